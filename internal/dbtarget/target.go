package dbtarget

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// Driver is what one database engine contributes: how to connect and what
// the user-management statements are. Its errors from Connect are
// *dbsecret.ConnError, classified by the driver's own error types.
type Driver interface {
	// Name is the function's engine name, for logs and errors.
	Name() string
	// Serves reports whether the driver serves the secret's "engine" value
	// (the empty value included).
	Serves(engine string) bool
	// Defaults are the secret defaults of the engine (port, dbname).
	Defaults() dbsecret.Defaults
	// MaxUserLen is the longest user name the engine accepts; longer names
	// are an error, never truncated.
	MaxUserLen() int
	// Connect logs in as user.
	Connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (Conn, error)
}

// Conn is a logged-in session.
type Conn interface {
	// Probe runs a read-only statement (SELECT 1).
	Probe(ctx context.Context) error
	// SetOwnPassword changes the password of the logged-in user.
	SetOwnPassword(ctx context.Context, user, password string) error
	// SetPassword sets the password of another user (the session is the
	// master user's). The user must exist.
	SetPassword(ctx context.Context, user, password string) error
	// EnsureClone creates clone, unless it exists, with the privileges of
	// original; and sets its password. Running it twice is harmless.
	EnsureClone(ctx context.Context, original, clone, password string) error
	Close() error
}

// SecretsAPI is the part of Secrets Manager the target calls itself: the
// master secret of the alternating-users strategy and the versions a
// single-user rotation may fall back on. ListSecretVersionIds is needed
// because DescribeSecret lists only the versions that carry a staging label,
// and the one password that still works may sit on an unlabelled one.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	ListSecretVersionIds(context.Context, *secretsmanager.ListSecretVersionIdsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
}

// Target rotates database credentials.
type Target struct {
	cfg Config
	drv Driver
	sm  SecretsAPI
	rds RDSAPI
}

var _ rotation.Target = (*Target)(nil)

// New returns a Target. rds may be nil when no secret uses RDS discovery.
func New(cfg Config, drv Driver, sm SecretsAPI, rds RDSAPI) *Target {
	return &Target{cfg: cfg, drv: drv, sm: sm, rds: rds}
}

func (t *Target) parse(label, value string) (*dbsecret.Secret, error) {
	s, err := dbsecret.Parse(value, t.drv.Defaults())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	if !t.drv.Serves(s.Engine) {
		return nil, fmt.Errorf("%s: engine %q is not served by the %s function", label, s.Engine, t.drv.Name())
	}
	if s.Host == "" && s.DBInstanceIdentifier == "" && s.DBClusterIdentifier == "" {
		return nil, fmt.Errorf(`%s: secret field "host" is missing (or give "dbInstanceIdentifier" or "dbClusterIdentifier")`, label)
	}
	return s, nil
}

// Create derives the pending value: a new password, and for the
// alternating-users strategy the other user.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	cur, err := t.parse("AWSCURRENT", req.Current.Value)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	user := cur.Username
	if cur.Strategy() == dbsecret.AlternatingUsers {
		// Refused here too, before a pending version is stored.
		if !t.cfg.masterMaySet(cur.BaseUser()) {
			return rotation.CreateResponse{}, fmt.Errorf(`user %q (field "username") is not in MASTER_ALLOWED_USERS: the master user may not set its password`, cur.BaseUser())
		}
		user = cur.OtherUser()
	}
	if len(user) > t.drv.MaxUserLen() {
		return rotation.CreateResponse{}, fmt.Errorf("user name %q is %d characters long, %s allows %d: shorten the user name", user, len(user), t.drv.Name(), t.drv.MaxUserLen())
	}
	pw, err := t.cfg.Password.Generate()
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	value, err := cur.With(user, pw)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	req.Log.LogAttrs(ctx, slog.LevelInfo, "new credentials generated",
		slog.String("strategy", string(cur.Strategy())), slog.String("user", user))
	return rotation.CreateResponse{Value: value}, nil
}

// sameTarget is the confused-deputy check: a version may only be used for
// the user and server of the current one or, alternating, for its twin.
func sameTarget(cur, other *dbsecret.Secret) error {
	if other.Host != cur.Host || other.Port != cur.Port ||
		other.DBInstanceIdentifier != cur.DBInstanceIdentifier || other.DBClusterIdentifier != cur.DBClusterIdentifier {
		return fmt.Errorf(`pending and current name different hosts (field "host": %s:%d vs %s:%d): refusing to set a password on another server`,
			other.Host, other.Port, cur.Host, cur.Port)
	}
	if other.MasterARN != cur.MasterARN {
		return errors.New(`pending and current name different master secrets (field "masterarn")`)
	}
	if cur.Strategy() == dbsecret.SingleUser && other.Username != cur.Username {
		return fmt.Errorf(`pending names user %q but current names %q (field "username"): refusing to change another user's password`, other.Username, cur.Username)
	}
	if cur.Strategy() == dbsecret.AlternatingUsers && other.Username != cur.OtherUser() {
		return fmt.Errorf(`pending names user %q, but the user that follows %q is %q (field "username"): refusing to change another user's password`,
			other.Username, cur.Username, cur.OtherUser())
	}
	return nil
}

// load reads and checks the current and pending secrets.
func (t *Target) load(ctx context.Context, req *rotation.StepRequest) (cur, pend *dbsecret.Secret, err error) {
	cv, err := req.Versions.Current(ctx)
	if err != nil {
		return nil, nil, err
	}
	if cur, err = t.parse("AWSCURRENT", cv.Value); err != nil {
		return nil, nil, err
	}
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return nil, nil, err
	}
	if pend, err = t.parse("AWSPENDING", pv.Value); err != nil {
		return nil, nil, err
	}
	if err := sameTarget(cur, pend); err != nil {
		return nil, nil, err
	}
	return cur, pend, nil
}

// login connects with the credentials of s, over the TLS that s asks for.
func (t *Target) login(ctx context.Context, s *dbsecret.Secret) (Conn, error) {
	ep, err := t.endpoint(ctx, s)
	if err != nil {
		return nil, err
	}
	return t.connect(ctx, ep, s.Username, s.Password)
}

// connect logs in at ep, bounded by DB_CONNECT_TIMEOUT and by ctx: the
// timeout the driver gets never outlives the invocation's deadline, and the
// context it gets ends with the timeout, so a server that accepts and never
// answers ends the step with an error, not with the Lambda's time-out.
func (t *Target) connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (Conn, error) {
	ep.Timeout = t.cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < ep.Timeout {
		ep.Timeout = max(time.Until(d), time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, ep.Timeout)
	defer cancel()
	return t.drv.Connect(cctx, ep, user, password)
}

// Set makes the database accept the pending credentials. It first logs in
// with what is expected to work (AWSCURRENT, or the proof and the master
// user of the alternating strategy) and tries AWSPENDING only when that
// fails, so that a rotation leaves no refused login in the server's log.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	cur, pend, err := t.load(ctx, req)
	if err != nil {
		return err
	}
	log := req.Log.With(slog.String("user", pend.Username), slog.String("strategy", string(cur.Strategy())))
	if cur.Strategy() == dbsecret.AlternatingUsers {
		return t.setAlternating(ctx, req, log, cur, pend)
	}
	return t.setSingle(ctx, req, log, cur, pend)
}

func (t *Target) setSingle(ctx context.Context, req *rotation.StepRequest, log *slog.Logger, cur, pend *dbsecret.Secret) error {
	conn, label, err := t.loginAsUser(ctx, req, cur, pend)
	if err != nil {
		return err
	}
	defer conn.Close()
	if label == "AWSPENDING" {
		// A setSecret before this one changed the password and died
		// before it returned: nothing is left to do.
		log.LogAttrs(ctx, slog.LevelInfo, "pending credentials already work: nothing to set")
		return nil
	}
	if err := conn.SetOwnPassword(ctx, pend.Username, pend.Password); err != nil {
		return fmt.Errorf("change password of %s: %w", pend.Username, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "password changed", slog.String("logged_in_with", label))
	return nil
}

// loginAsUser logs in with AWSCURRENT. When the database refuses it, a
// setSecret that already ran may have set AWSPENDING (label "AWSPENDING":
// nothing left to do); failing that AWSPREVIOUS (a rotation that set a
// password and then failed before finishSecret is undone by no one; the
// previous value is the last one that worked before it), and failing both
// one of the other versions the secret still holds (see
// loginWithOtherVersion). Only these recoveries can make the server log a
// refused login; a rotation that goes as planned makes none.
func (t *Target) loginAsUser(ctx context.Context, req *rotation.StepRequest, cur, pend *dbsecret.Secret) (Conn, string, error) {
	conn, err := t.login(ctx, cur)
	if err == nil {
		return conn, "AWSCURRENT", nil
	}
	if !errors.Is(err, dbsecret.ErrCannotLogIn) {
		return nil, "", err
	}
	conn, perr := t.login(ctx, pend)
	if perr == nil {
		return conn, "AWSPENDING", nil
	}
	if !errors.Is(perr, dbsecret.ErrCannotLogIn) {
		return nil, "", perr
	}
	prev, ok, perr := req.Versions.Previous(ctx)
	if perr != nil {
		return nil, "", perr
	}
	if ok {
		ps, perr := t.parse("AWSPREVIOUS", prev.Value)
		if perr == nil && sameUser(cur, ps) {
			conn, perr := t.login(ctx, ps)
			if perr == nil {
				return conn, "AWSPREVIOUS", nil
			}
			if !errors.Is(perr, dbsecret.ErrCannotLogIn) {
				return nil, "", perr
			}
		}
	}
	conn, label, tried, oerr := t.loginWithOtherVersion(ctx, req, cur)
	if oerr != nil {
		return nil, "", fmt.Errorf("cannot log in as %s with AWSCURRENT or AWSPREVIOUS (AWSPENDING is not set either) (%w); looking for another version: %w", cur.Username, err, oerr)
	}
	if conn != nil {
		return conn, label, nil
	}
	return nil, "", fmt.Errorf("cannot log in as %s with AWSCURRENT or AWSPREVIOUS (AWSPENDING is not set either), nor with %d other versions of the secret: %w", cur.Username, tried, err)
}

// sameUser reports whether s names the user and server of cur: only such a
// version may be used to log in and change cur's password.
func sameUser(cur, s *dbsecret.Secret) bool {
	return sameTarget(cur, s) == nil && s.Username == cur.Username
}

// maxOtherVersions bounds how many versions besides AWSCURRENT and
// AWSPREVIOUS a single-user setSecret tries: each costs a read and a login.
const maxOtherVersions = 5

// loginWithOtherVersion is the last resort of a single-user setSecret whose
// AWSCURRENT and AWSPREVIOUS both fail: a rotation was abandoned after its
// setSecret changed the password, and an operator took AWSPENDING off that
// version by hand so that a new rotation could start. The only password the
// database accepts then sits on a version without a label. It tries the
// other versions, newest first and at most maxOtherVersions of them, that
// name the same user and server. It returns a nil Conn when none logs in,
// with the number it tried.
func (t *Target) loginWithOtherVersion(ctx context.Context, req *rotation.StepRequest, cur *dbsecret.Secret) (Conn, string, int, error) {
	ids, err := t.otherVersionIDs(ctx, req)
	if err != nil {
		return nil, "", 0, err
	}
	tried := 0
	for _, id := range ids {
		v, err := req.Versions.ByID(ctx, id)
		if err != nil {
			// A placeholder without a value, or a version deleted since.
			req.Log.LogAttrs(ctx, slog.LevelDebug, "other version unreadable: skipped", slog.String("other_version_id", id), slog.Any("error", err))
			continue
		}
		s, err := t.parse("version "+id, v.Value)
		if err != nil || !sameUser(cur, s) {
			req.Log.LogAttrs(ctx, slog.LevelWarn, "other version names another user or server: skipped", slog.String("other_version_id", id))
			continue
		}
		tried++
		conn, err := t.login(ctx, s)
		if err == nil {
			req.Log.LogAttrs(ctx, slog.LevelWarn, "AWSCURRENT and AWSPREVIOUS do not log in; a version without those labels does",
				slog.String("user", cur.Username), slog.String("other_version_id", id))
			return conn, "version " + id, tried, nil
		}
		if !errors.Is(err, dbsecret.ErrCannotLogIn) {
			return nil, "", tried, err
		}
	}
	return nil, "", tried, nil
}

// otherVersionIDs lists the versions of the secret, labelled or not, other
// than AWSCURRENT, AWSPREVIOUS and the pending one (all tried before), newest
// first, at most maxOtherVersions of them. DescribeSecret lists only labelled versions on AWS, hence
// ListSecretVersionIds with IncludeDeprecated.
func (t *Target) otherVersionIDs(ctx context.Context, req *rotation.StepRequest) ([]string, error) {
	var all []smtypes.SecretVersionsListEntry
	p := secretsmanager.NewListSecretVersionIdsPaginator(t.sm, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(req.Secret.ARN), IncludeDeprecated: aws.Bool(true), MaxResults: aws.Int32(100),
	})
	// Secrets Manager keeps about 100 unlabelled versions: two pages at most
	// in practice; the bound keeps a misbehaving endpoint from looping.
	for page := 0; p.HasMorePages() && page < 5; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list versions of %s: %w", req.Secret.ARN, err)
		}
		all = append(all, out.Versions...)
	}
	// Newest first. Emulators give creation dates in whole seconds (moto:
	// the time of the call) and list oldest first, so ties keep the
	// reverse of the listed order.
	slices.Reverse(all)
	slices.SortStableFunc(all, func(a, b smtypes.SecretVersionsListEntry) int {
		return aws.ToTime(b.CreatedDate).Compare(aws.ToTime(a.CreatedDate))
	})
	var ids []string
	for _, v := range all {
		id := aws.ToString(v.VersionId)
		if id == "" || id == req.Secret.Token ||
			slices.Contains(v.VersionStages, "AWSCURRENT") || slices.Contains(v.VersionStages, "AWSPREVIOUS") {
			continue
		}
		ids = append(ids, id)
		if len(ids) == maxOtherVersions {
			break
		}
	}
	return ids, nil
}

// setAlternating has the master user set the idle user's password, once
// the secret's writer has proved that it controls that user (see prove).
func (t *Target) setAlternating(ctx context.Context, req *rotation.StepRequest, log *slog.Logger, cur, pend *dbsecret.Secret) error {
	base := cur.BaseUser()
	if !t.cfg.masterMaySet(base) {
		return fmt.Errorf(`user %q (field "username") is not in MASTER_ALLOWED_USERS: the master user may not set its password`, base)
	}
	proof, err := t.prove(ctx, req, cur, pend)
	if err != nil {
		return err
	}
	if proof == "AWSPENDING" {
		log.LogAttrs(ctx, slog.LevelInfo, "pending credentials already work: nothing to set")
		return nil
	}
	master, ep, err := t.master(ctx, cur)
	if err != nil {
		return err
	}
	conn, err := t.connect(ctx, ep, master.Username, master.Password)
	if err != nil {
		return fmt.Errorf("log in as master user %s: %w", master.Username, err)
	}
	defer conn.Close()
	if pend.Username == base {
		err = conn.SetPassword(ctx, pend.Username, pend.Password)
	} else {
		err = conn.EnsureClone(ctx, base, pend.Username, pend.Password)
	}
	if err != nil {
		return fmt.Errorf("set password of %s as %s: %w", pend.Username, master.Username, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "password set by the master user",
		slog.String("master_user", master.Username), slog.String("proved_by", proof))
	return nil
}

// prove pins the alternating strategy to users that the secret's writer
// already controls: before the master user changes the pending user's
// password, a version of the secret must log in as that user with its own
// password. That version is AWSPREVIOUS, which holds the idle user's last
// password. A secret that has never named the pending user (its first
// rotation) may only move from a base user to its clone, and AWSCURRENT, the
// base user's own credentials, must then log in: the master user creates the
// clone (or resets an existing <user>_clone) with the base user's
// privileges and nothing more.
//
// It returns the label of the version that proved control, "AWSPENDING"
// when a setSecret before this one already set the password (it died before
// returning). Only that recovery makes the server log a refused login.
func (t *Target) prove(ctx context.Context, req *rotation.StepRequest, cur, pend *dbsecret.Secret) (string, error) {
	prev, ok, err := req.Versions.Previous(ctx)
	if err != nil {
		return "", err
	}
	var ps *dbsecret.Secret
	if ok {
		if s, err := t.parse("AWSPREVIOUS", prev.Value); err == nil && sameTarget(cur, s) == nil && s.Username == pend.Username {
			ps = s
		}
	}
	if ps == nil {
		if pend.Username != cur.Username+dbsecret.CloneSuffix {
			return "", fmt.Errorf(`AWSCURRENT names %q (field "username"), the clone of %q, and no version of the secret proves control of %q (AWSPREVIOUS does not name it): refusing to let the master user set its password; start alternating rotation from the base user's credentials`,
				cur.Username, pend.Username, pend.Username)
		}
		conn, err := t.login(ctx, cur)
		if err != nil {
			if errors.Is(err, dbsecret.ErrCannotLogIn) {
				return "", fmt.Errorf(`AWSCURRENT does not log in as %q (field "password"), so nothing proves that the secret's writer controls it: the master user changes nothing: %w`, cur.Username, err)
			}
			return "", err
		}
		conn.Close()
		return "AWSCURRENT", nil
	}
	conn, err := t.login(ctx, ps)
	if err == nil {
		conn.Close()
		return "AWSPREVIOUS", nil
	}
	if !errors.Is(err, dbsecret.ErrCannotLogIn) {
		return "", err
	}
	conn, perr := t.login(ctx, pend)
	if perr == nil {
		conn.Close()
		return "AWSPENDING", nil
	}
	if !errors.Is(perr, dbsecret.ErrCannotLogIn) {
		return "", perr
	}
	return "", fmt.Errorf(`neither AWSPREVIOUS nor AWSPENDING logs in as %q (field "password"), so nothing proves that the secret's writer controls it: the master user changes nothing: %w`, pend.Username, err)
}

// master reads the secret that masterarn names and decides where its
// credentials may go; they go nowhere else, and only over verified TLS
// (the user secret's "ssl" does not apply to them).
//   - A master secret that names a server (host, or an RDS identifier) is
//     used there, which must be the user secret's server.
//   - One that names none but carries an aws:rds tag (an RDS-managed master
//     secret) is used at the tagged instance or cluster, which must be the
//     user secret's server.
//   - One that names no server at all is used at the user secret's server
//     only when MASTER_ALLOWED_SERVERS lists it: otherwise a user secret
//     could send the master password to a server of its choosing.
func (t *Target) master(ctx context.Context, cur *dbsecret.Secret) (*dbsecret.Secret, dbsecret.Endpoint, error) {
	fail := func(err error) (*dbsecret.Secret, dbsecret.Endpoint, error) { return nil, dbsecret.Endpoint{}, err }
	out, err := t.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(cur.MasterARN), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return fail(fmt.Errorf("read master secret %s (masterarn): %w", cur.MasterARN, err))
	}
	m, err := dbsecret.Parse(aws.ToString(out.SecretString), t.drv.Defaults())
	if err != nil {
		return fail(fmt.Errorf("master secret %s: %w", cur.MasterARN, err))
	}
	if !m.SSL {
		return fail(fmt.Errorf(`master secret %s (field "masterarn") says "ssl": false: master credentials travel only over verified TLS`, cur.MasterARN))
	}
	if m.Username == cur.BaseUser() || m.Username == cur.BaseUser()+dbsecret.CloneSuffix {
		return fail(fmt.Errorf(`master secret %s (field "masterarn") names user %s, one of the users it would rotate`, cur.MasterARN, m.Username))
	}
	userEP, err := t.endpoint(ctx, cur)
	if err != nil {
		return fail(err)
	}
	var host string
	var port int
	if m.Host != "" || m.DBInstanceIdentifier != "" || m.DBClusterIdentifier != "" {
		mEP, err := t.endpoint(ctx, m)
		if err != nil {
			return fail(fmt.Errorf("master secret %s: %w", cur.MasterARN, err))
		}
		if serverKey(mEP.Host, mEP.Port) != serverKey(userEP.Host, userEP.Port) {
			return fail(fmt.Errorf(`master secret %s (field "masterarn") names %s, the user secret (field "host") %s: refusing to use it`, cur.MasterARN, mEP, userEP))
		}
		host, port = mEP.Host, mEP.Port
	} else {
		tagged, ok, err := t.masterFromTags(ctx, cur.MasterARN)
		if err != nil {
			return fail(err)
		}
		switch {
		case ok && serverKey(tagged.Host, tagged.Port) != serverKey(userEP.Host, userEP.Port):
			return fail(fmt.Errorf(`master secret %s (field "masterarn") belongs to %s, the user secret (field "host") to %s: refusing to use it`, cur.MasterARN, tagged, userEP))
		case !ok && !t.cfg.masterMayUse(userEP.Host, userEP.Port):
			return fail(fmt.Errorf(`master secret %s (field "masterarn") names no server (no host, no RDS identifier, no aws:rds tag) and MASTER_ALLOWED_SERVERS does not list %s, the server of the user secret (field "host"): refusing to send master credentials there`,
				cur.MasterARN, userEP))
		}
		host, port = userEP.Host, userEP.Port
	}
	tlsCfg, err := t.tlsConfig(true, host, m.CABundle)
	if err != nil {
		return fail(fmt.Errorf("master secret %s: %w", cur.MasterARN, err))
	}
	return m, dbsecret.Endpoint{Engine: userEP.Engine, Host: host, Port: port, DBName: m.DBName, TLS: tlsCfg}, nil
}

// masterFromTags finds where an RDS-managed master secret (only username
// and password) belongs: the instance or cluster of its aws:rds tag. ok is
// false for a master secret without such a tag.
func (t *Target) masterFromTags(ctx context.Context, masterARN string) (RDSEndpoint, bool, error) {
	d, err := t.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(masterARN)})
	if err != nil {
		return RDSEndpoint{}, false, fmt.Errorf("describe master secret %s (masterarn): %w", masterARN, err)
	}
	var inst, cluster string
	for _, tag := range d.Tags {
		switch aws.ToString(tag.Key) {
		case "aws:rds:primaryDBInstanceArn":
			inst = aws.ToString(tag.Value)
		case "aws:rds:primaryDBClusterArn":
			cluster = aws.ToString(tag.Value)
		}
	}
	if inst == "" && cluster == "" {
		return RDSEndpoint{}, false, nil
	}
	ep, err := t.rdsEndpoint(ctx, inst, cluster)
	if err != nil {
		return RDSEndpoint{}, false, fmt.Errorf("master secret %s: %w", masterARN, err)
	}
	return ep, true, nil
}

// Test logs in with the pending credentials and runs a read-only probe.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	_, pend, err := t.load(ctx, req)
	if err != nil {
		return err
	}
	conn, err := t.login(ctx, pend)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Probe(ctx); err != nil {
		return fmt.Errorf("probe as %s: %w", pend.Username, err)
	}
	req.Log.LogAttrs(ctx, slog.LevelInfo, "pending credentials log in", slog.String("user", pend.Username))
	return nil
}

// endpoint resolves where s connects, with the TLS that s asks for.
func (t *Target) endpoint(ctx context.Context, s *dbsecret.Secret) (dbsecret.Endpoint, error) {
	ep := dbsecret.Endpoint{Engine: s.Engine, Host: s.Host, Port: s.Port, DBName: s.DBName, Timeout: t.cfg.ConnectTimeout}
	if s.Host == "" {
		r, err := t.rdsEndpoint(ctx, s.DBInstanceIdentifier, s.DBClusterIdentifier)
		if err != nil {
			return dbsecret.Endpoint{}, err
		}
		ep.Host, ep.Port = r.Host, r.Port
		if ep.Engine == "" {
			ep.Engine = r.Engine
		}
		if !t.drv.Serves(r.Engine) {
			return dbsecret.Endpoint{}, fmt.Errorf("RDS reports engine %q for %s, which the %s function does not serve", r.Engine, r.ID, t.drv.Name())
		}
	}
	tlsCfg, err := t.tlsConfig(s.SSL, ep.Host, s.CABundle)
	if err != nil {
		return dbsecret.Endpoint{}, err
	}
	ep.TLS = tlsCfg
	return ep, nil
}

// tlsConfig verifies host against the system roots, DB_CA_BUNDLE and the
// secret's ca_bundle, a PEM file shipped with the function (Parse has
// refused any name with a directory in it).
func (t *Target) tlsConfig(ssl bool, host, caBundle string) (*tls.Config, error) {
	files := []string{t.cfg.CABundle}
	if caBundle != "" && ssl {
		f := filepath.Join(t.cfg.BundleDir, caBundle)
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf(`secret field "ca_bundle": %q is not a file shipped with the function`, caBundle)
		}
		files = append(files, f)
	}
	return dbsecret.TLSConfig(ssl, host, files...)
}

// Served is a helper for Driver.Serves.
func Served(engine string, names ...string) bool {
	return engine == "" || slices.Contains(names, engine)
}
