// Package account is the strategy layer of the account-based rotation
// targets: databases, directories, caches and brokers, wherever a secret
// holds a user name and a password that a server checks. It implements
// rotation.Target once for all of them:
//
//   - single user: the user's password changes, set by the user itself or,
//     where the system allows nothing else, by a master user; where an
//     account holds several passwords at once, the new one is added and the
//     old ones are removed once AWSCURRENT moved;
//   - alternating users: a master user sets the password of the idle one of
//     two users (<user> and its clone), so the one clients hold never
//     changes;
//   - the crash fallback over other versions of the secret;
//   - the trust rules, since a secret's content is untrusted input: master
//     credentials go only where the master secret or the function's
//     configuration says, over verified TLS; the master user touches only
//     users that the secret proved it controls, by logging in as them; no
//     refused login in a rotation that goes as planned; every login bounded
//     by the invocation's deadline.
//
// Each system is a Driver beneath it, the way HashiCorp Vault's database
// plugins share one lifecycle: the driver parses its secret format, says
// where a version connects, logs in and sets passwords; the layer decides
// everything else. internal/dbtarget is the driver of the SQL engines.
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// SecretsAPI is the part of Secrets Manager the layer calls itself: the
// master secret, and the versions a single-user setSecret may fall back on.
// ListSecretVersionIds is needed because DescribeSecret lists only the
// versions that carry a staging label, and the one password that still
// works may sit on an unlabelled one.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	ListSecretVersionIds(context.Context, *secretsmanager.ListSecretVersionIdsInput, ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretVersionIdsOutput, error)
}

// Target rotates the accounts of one Driver.
type Target struct {
	cfg  Config
	drv  Driver
	caps Capabilities
	sm   SecretsAPI
}

var (
	_ rotation.Target   = (*Target)(nil)
	_ rotation.Finisher = (*Target)(nil)
)

// New returns a Target.
func New(cfg Config, drv Driver, sm SecretsAPI) *Target {
	return &Target{cfg: cfg, drv: drv, caps: drv.Capabilities(), sm: sm}
}

// The labels of the versions a step may log in with.
const (
	labelCurrent  = "AWSCURRENT"
	labelPending  = "AWSPENDING"
	labelPrevious = "AWSPREVIOUS"
)

// parse reads a version of the rotated secret.
func (t *Target) parse(label, value string) (Account, error) {
	a, err := t.drv.Parse(ParseRequest{Value: value})
	if err != nil {
		return Account{}, fmt.Errorf("%s: %w", label, err)
	}
	if a.Server == "" {
		return Account{}, fmt.Errorf("%s: the secret names no server", label)
	}
	if a.Strategy == AlternatingUsers && a.MasterARN == "" {
		return Account{}, fmt.Errorf(`%s: alternating users need a master secret (field "masterarn")`, label)
	}
	return a, nil
}

// twins returns the pair of cur (alternating users only).
func (t *Target) twins(cur Account) (Twins, error) {
	if cur.Strategy != AlternatingUsers {
		return Twins{}, nil
	}
	return t.drv.Twins(TwinsRequest{Username: cur.Username})
}

// baseUser is the user whose name MASTER_ALLOWED_USERS matches.
func baseUser(cur Account, tw Twins) string {
	if cur.Strategy == AlternatingUsers {
		return tw.Base
	}
	return cur.Username
}

// Create derives the pending value: a new password, and for the
// alternating strategy the other user. Refusals that need no server are
// made here, before a pending version is stored.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	cur, err := t.parse(labelCurrent, req.Current.Value)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	tw, err := t.twins(cur)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	if err := t.canSet(cur, tw); err != nil {
		return rotation.CreateResponse{}, err
	}
	user := cur.Username
	if cur.Strategy == AlternatingUsers {
		user = tw.Other(cur.Username)
	}
	pw, err := t.cfg.Password.Generate()
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	value, err := t.drv.NewValue(NewValueRequest{Account: cur, Username: user, Password: pw})
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	req.Log.LogAttrs(ctx, slog.LevelInfo, "new credentials generated",
		slog.String("strategy", string(cur.Strategy)), slog.String("user", user))
	return rotation.CreateResponse{Value: value}, nil
}

// canSet refuses what the configuration and the driver rule out, before
// anything is read or changed: a user the master may not touch, a single
// user that can change its password neither itself nor through a master.
func (t *Target) canSet(cur Account, tw Twins) error {
	if cur.MasterARN != "" && !t.cfg.masterMaySet(baseUser(cur, tw)) {
		return fmt.Errorf(`user %q (field "username") is not in MASTER_ALLOWED_USERS: the master user may not set its password`, baseUser(cur, tw))
	}
	if cur.MasterARN == "" && !t.caps.OwnPassword && !t.caps.SeveralPasswords {
		return fmt.Errorf(`a %s user cannot change its own password: the secret needs a master secret (field "masterarn")`, t.drv.Name())
	}
	return nil
}

// sameTarget is the confused-deputy check: a version may only be used for
// the user and server of the current one or, alternating, for its twin.
func sameTarget(cur, other Account, tw Twins) error {
	if other.Server != cur.Server {
		return fmt.Errorf(`pending and current name different hosts (field "host": %s vs %s): refusing to set a password on another server`, other.Server, cur.Server)
	}
	if other.MasterARN != cur.MasterARN {
		return errors.New(`pending and current name different master secrets (field "masterarn")`)
	}
	if cur.Strategy == AlternatingUsers {
		if other.Username != tw.Other(cur.Username) {
			return fmt.Errorf(`pending names user %q, but the user that follows %q is %q (field "username"): refusing to change another user's password`,
				other.Username, cur.Username, tw.Other(cur.Username))
		}
		return nil
	}
	if other.Username != cur.Username {
		return fmt.Errorf(`pending names user %q but current names %q (field "username"): refusing to change another user's password`, other.Username, cur.Username)
	}
	return nil
}

// sameUser reports whether a names the user and server of cur: only such a
// version may be used to log in as cur's user.
func sameUser(cur, a Account) bool {
	return a.Server == cur.Server && a.MasterARN == cur.MasterARN && a.Username == cur.Username
}

// load reads and checks the current and pending versions.
func (t *Target) load(ctx context.Context, req *rotation.StepRequest) (cur, pend Account, tw Twins, err error) {
	cv, err := req.Versions.Current(ctx)
	if err != nil {
		return Account{}, Account{}, Twins{}, err
	}
	if cur, err = t.parse(labelCurrent, cv.Value); err != nil {
		return Account{}, Account{}, Twins{}, err
	}
	if tw, err = t.twins(cur); err != nil {
		return Account{}, Account{}, Twins{}, err
	}
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return Account{}, Account{}, Twins{}, err
	}
	if pend, err = t.parse(labelPending, pv.Value); err != nil {
		return Account{}, Account{}, Twins{}, err
	}
	if err := sameTarget(cur, pend, tw); err != nil {
		return Account{}, Account{}, Twins{}, err
	}
	return cur, pend, tw, nil
}

// login logs in as a's user at a's server, over the TLS a asks for.
func (t *Target) login(ctx context.Context, a Account) (Session, error) {
	loc, err := t.drv.Locate(ctx, LocateRequest{Account: a})
	if err != nil {
		return nil, err
	}
	return t.connect(ctx, loc, a.Username, a.Password, false)
}

// connect logs in at loc, bounded by the configured timeout and by ctx: the
// timeout the driver gets never outlives the invocation's deadline, and the
// context it gets ends with the timeout, so a server that accepts and never
// answers ends the step with an error, not with the Lambda's time-out.
// Master credentials always go over verified TLS.
func (t *Target) connect(ctx context.Context, loc Location, user, password string, master bool) (Session, error) {
	tlsCfg, err := t.tlsFor(loc, master)
	if err != nil {
		return nil, err
	}
	timeout := t.cfg.ConnectTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return t.drv.Connect(cctx, ConnectRequest{Location: loc, Username: user, Password: password, TLS: tlsCfg, Timeout: timeout, Master: master})
}

// Test logs in with the pending credentials and probes the session.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	// Only AWSPENDING is read: testing logs in with the pending
	// credentials where the pending version says, which reveals nothing
	// beyond that secret's own credential, and changes nothing. The
	// checks against AWSCURRENT guard the steps that use other
	// credentials (setSecret) or move labels (the engine's finishSecret).
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	pend, err := t.parse(labelPending, pv.Value)
	if err != nil {
		return err
	}
	s, err := t.login(ctx, pend)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Probe(ctx); err != nil {
		return fmt.Errorf("probe as %s: %w", pend.Username, err)
	}
	req.Log.LogAttrs(ctx, slog.LevelInfo, "pending credentials log in", slog.String("user", pend.Username))
	return nil
}

// Finish runs once AWSCURRENT moved to the token's version. Only for a
// single user whose account holds several passwords
// (Capabilities.SeveralPasswords) is there anything to do: remove every
// password of the user but those of AWSCURRENT and AWSPREVIOUS, so that
// clients holding either keep working and older ones stop. It is
// idempotent, and runs the same whether the invocation began before or
// after the label moved (a retried finishSecret). For other drivers it
// makes no call and no login.
func (t *Target) Finish(ctx context.Context, req *rotation.StepRequest) error {
	if !t.caps.SeveralPasswords {
		return nil
	}
	pv, err := req.Versions.Pending(ctx) // the token's version: AWSCURRENT now
	if err != nil {
		return err
	}
	cur, err := t.parse(labelCurrent, pv.Value)
	if err != nil || cur.Strategy != SingleUser {
		return err // alternating users replace the idle user's password
	}
	keep := []string{cur.Password}
	// The version AWSCURRENT moved away from, AWSPREVIOUS now: the engine
	// says which, in the first run and in a retry alike.
	prevID := req.Replaced
	if prevID != "" {
		// Unreadable, it is not known which password to keep: remove none.
		v, err := req.Versions.ByID(ctx, prevID)
		if err != nil {
			return fmt.Errorf("read AWSPREVIOUS before removing old passwords: %w", err)
		}
		a, err := t.parse(labelPrevious, v.Value)
		if err != nil {
			return err
		}
		if sameUser(cur, a) {
			keep = append(keep, a.Password)
		}
	}
	var s Session
	if cur.MasterARN != "" {
		master, loc, err := t.master(ctx, cur, Twins{})
		if err != nil {
			return err
		}
		if s, err = t.connect(ctx, loc, master.Username, master.Password, true); err != nil {
			return fmt.Errorf("log in as master user %s: %w", master.Username, err)
		}
	} else if s, err = t.login(ctx, cur); err != nil {
		return err
	}
	defer s.Close()
	if err := s.RemovePasswords(ctx, RemovePasswordsRequest{Username: cur.Username, Keep: keep}); err != nil {
		return fmt.Errorf("remove old passwords of %s: %w", cur.Username, err)
	}
	req.Log.LogAttrs(ctx, slog.LevelInfo, "passwords older than AWSPREVIOUS removed",
		slog.String("user", cur.Username), slog.Int("kept", len(keep)))
	return nil
}

// readMaster reads the master secret's current value.
func (t *Target) readMaster(ctx context.Context, arn string) (string, error) {
	out, err := t.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(arn), VersionStage: aws.String(labelCurrent),
	})
	if err != nil {
		return "", fmt.Errorf("read master secret %s (masterarn): %w", arn, err)
	}
	return aws.ToString(out.SecretString), nil
}
