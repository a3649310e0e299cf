package dbtarget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

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

// sameTarget is the confused-deputy check: a pending value may only be set
// for the user and host of the current one (or, alternating, its twin).
func sameTarget(cur, other *dbsecret.Secret) error {
	if other.Host != cur.Host || other.Port != cur.Port ||
		other.DBInstanceIdentifier != cur.DBInstanceIdentifier || other.DBClusterIdentifier != cur.DBClusterIdentifier {
		return fmt.Errorf("pending and current name different hosts (%s:%d vs %s:%d): refusing to set a password on another server",
			other.Host, other.Port, cur.Host, cur.Port)
	}
	if other.MasterARN != cur.MasterARN {
		return errors.New("pending and current name different master secrets (masterarn)")
	}
	if cur.Strategy() == dbsecret.SingleUser && other.Username != cur.Username {
		return fmt.Errorf("pending names user %q but current names %q: refusing to change another user's password", other.Username, cur.Username)
	}
	if cur.Strategy() == dbsecret.AlternatingUsers && other.BaseUser() != cur.BaseUser() {
		return fmt.Errorf("pending names user %q, which is neither %q nor its clone", other.Username, cur.BaseUser())
	}
	return nil
}

// steps reads and checks the current and pending secrets.
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

// login connects with the credentials of s.
func (t *Target) login(ctx context.Context, s *dbsecret.Secret) (Conn, error) {
	ep, err := t.endpoint(ctx, s)
	if err != nil {
		return nil, err
	}
	return t.drv.Connect(ctx, ep, s.Username, s.Password)
}

// Set makes the database accept the pending credentials.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	cur, pend, err := t.load(ctx, req)
	if err != nil {
		return err
	}
	log := req.Log.With(slog.String("user", pend.Username), slog.String("strategy", string(cur.Strategy())))
	// Converge: a setSecret that already ran (or crashed after changing the
	// password) has nothing left to do.
	conn, err := t.login(ctx, pend)
	if err == nil {
		conn.Close()
		log.LogAttrs(ctx, slog.LevelInfo, "pending credentials already work: nothing to set")
		return nil
	}
	if !errors.Is(err, dbsecret.ErrCannotLogIn) {
		return err
	}
	if cur.Strategy() == dbsecret.AlternatingUsers {
		return t.setAlternating(ctx, log, cur, pend)
	}
	return t.setSingle(ctx, req, log, cur, pend)
}

func (t *Target) setSingle(ctx context.Context, req *rotation.StepRequest, log *slog.Logger, cur, pend *dbsecret.Secret) error {
	conn, label, err := t.loginAsUser(ctx, req, cur)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetOwnPassword(ctx, pend.Username, pend.Password); err != nil {
		return fmt.Errorf("change password of %s: %w", pend.Username, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "password changed", slog.String("logged_in_with", label))
	return nil
}

// loginAsUser logs in with AWSCURRENT, or AWSPREVIOUS when the current
// password no longer works (a rotation that set a password and then failed
// before finishSecret is undone by no one; the previous value is the last
// one that worked before it), or failing both with one of the other
// versions the secret still holds (see loginWithOtherVersion).
func (t *Target) loginAsUser(ctx context.Context, req *rotation.StepRequest, cur *dbsecret.Secret) (Conn, string, error) {
	conn, err := t.login(ctx, cur)
	if err == nil {
		return conn, "AWSCURRENT", nil
	}
	if !errors.Is(err, dbsecret.ErrCannotLogIn) {
		return nil, "", err
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
		return nil, "", fmt.Errorf("cannot log in as %s with AWSCURRENT or AWSPREVIOUS (%w); looking for another version: %w", cur.Username, err, oerr)
	}
	if conn != nil {
		return conn, label, nil
	}
	return nil, "", fmt.Errorf("cannot log in as %s with AWSCURRENT or AWSPREVIOUS, nor with %d other versions of the secret: %w", cur.Username, tried, err)
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

func (t *Target) setAlternating(ctx context.Context, log *slog.Logger, cur, pend *dbsecret.Secret) error {
	master, err := t.master(ctx, cur)
	if err != nil {
		return err
	}
	conn, err := t.login(ctx, master)
	if err != nil {
		return fmt.Errorf("log in as master user %s: %w", master.Username, err)
	}
	defer conn.Close()
	base := cur.BaseUser()
	if pend.Username == base {
		err = conn.SetPassword(ctx, pend.Username, pend.Password)
	} else {
		err = conn.EnsureClone(ctx, base, pend.Username, pend.Password)
	}
	if err != nil {
		return fmt.Errorf("set password of %s as %s: %w", pend.Username, master.Username, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "password set by the master user", slog.String("master_user", master.Username))
	return nil
}

// master reads the secret that masterarn names. A master secret without a
// host (RDS-managed: only username and password) connects to the user
// secret's server; one with a host must name the same server, so that a
// master secret cannot be pointed at another database.
func (t *Target) master(ctx context.Context, cur *dbsecret.Secret) (*dbsecret.Secret, error) {
	out, err := t.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(cur.MasterARN), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return nil, fmt.Errorf("read master secret %s (masterarn): %w", cur.MasterARN, err)
	}
	m, err := dbsecret.Parse(aws.ToString(out.SecretString), t.drv.Defaults())
	if err != nil {
		return nil, fmt.Errorf("master secret %s: %w", cur.MasterARN, err)
	}
	if m.Host == "" && m.DBInstanceIdentifier == "" && m.DBClusterIdentifier == "" {
		if err := t.masterFromTags(ctx, cur, m); err != nil {
			return nil, err
		}
	} else if cur.Host != "" && m.Host != "" && (m.Host != cur.Host || m.Port != cur.Port) {
		return nil, fmt.Errorf("master secret %s names %s:%d, the user secret %s:%d: refusing to use it", cur.MasterARN, m.Host, m.Port, cur.Host, cur.Port)
	}
	if m.Username == cur.BaseUser() || m.Username == cur.BaseUser()+dbsecret.CloneSuffix {
		return nil, fmt.Errorf("master secret %s names user %s, one of the users it would rotate", cur.MasterARN, m.Username)
	}
	return m, nil
}

// masterFromTags fills in where an RDS-managed master secret connects: the
// instance or cluster its aws:rds tags name, which must be the server of
// the user secret.
func (t *Target) masterFromTags(ctx context.Context, cur, m *dbsecret.Secret) error {
	m.Host, m.Port, m.SSL, m.CABundle, m.DBName = cur.Host, cur.Port, cur.SSL, cur.CABundle, cur.DBName
	m.DBInstanceIdentifier, m.DBClusterIdentifier = cur.DBInstanceIdentifier, cur.DBClusterIdentifier
	d, err := t.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(cur.MasterARN)})
	if err != nil {
		return fmt.Errorf("describe master secret %s (masterarn): %w", cur.MasterARN, err)
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
		// A plain master secret with only credentials: same server.
		return nil
	}
	ep, err := t.rdsEndpoint(ctx, inst, cluster)
	if err != nil {
		return fmt.Errorf("master secret %s: %w", cur.MasterARN, err)
	}
	userEP, err := t.endpoint(ctx, cur)
	if err != nil {
		return err
	}
	if ep.Host != userEP.Host || ep.Port != userEP.Port {
		return fmt.Errorf("master secret %s belongs to %s, the user secret to %s: refusing to use it", cur.MasterARN, ep, userEP)
	}
	m.Host, m.Port = ep.Host, ep.Port
	return nil
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

// endpoint resolves where s connects.
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
	tlsCfg, err := dbsecret.TLSConfig(s.SSL, ep.Host, t.cfg.CABundle, s.CABundle)
	if err != nil {
		return dbsecret.Endpoint{}, err
	}
	ep.TLS = tlsCfg
	return ep, nil
}

// Served is a helper for Driver.Serves.
func Served(engine string, names ...string) bool {
	return engine == "" || slices.Contains(names, engine)
}
