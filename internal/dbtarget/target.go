// Package dbtarget is the SQL engines' driver of the account strategy layer
// (internal/account): the database secret format (internal/dbsecret), RDS
// discovery, and the masters of RDS-managed secrets, written once over a
// Driver that each engine implements (internal/targets/postgres,
// internal/targets/mysql): how to connect, and the statements that change
// a password.
//
// It is configured from the environment of the Lambda function:
//
//	Variable                Default            Meaning
//	PASSWORD_LENGTH         32                 length of generated passwords
//	EXCLUDE_CHARACTERS      /@"'\ :?#[]%`      characters never used (plus the space,
//	                                           which INCLUDE_SPACE leaves out anyway):
//	                                           they break DSNs and connection strings
//	EXCLUDE_* / INCLUDE_SPACE / REQUIRE_EACH_INCLUDED_TYPE   as for the generic function
//	DB_CA_BUNDLE            (none)             PEM file trusted besides the system roots
//	DB_CONNECT_TIMEOUT      5s                 timeout of one database connection attempt,
//	                                           never beyond the invocation's deadline
//	MASTER_ALLOWED_SERVERS  (none)             host:port list: where a master secret that
//	                                           names no server (no host, no RDS
//	                                           identifier, no aws:rds tag) may be used
//	MASTER_ALLOWED_USERS    (none: any)        user names, or prefixes ending in "*", whose
//	                                           passwords the master user may set
//	                                           (alternating users; the clone follows
//	                                           its base user)
package dbtarget

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
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
	// Connect logs in as user. It uses exactly ep.TLS (nil: plaintext),
	// and honours ctx and ep.Timeout for the whole login.
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

// SecretsAPI is the part of Secrets Manager the database target calls
// itself: the account layer's, and DescribeSecret for the tags of an
// RDS-managed master secret.
type SecretsAPI interface {
	account.SecretsAPI
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
}

// Target rotates database credentials: the account layer over an engine.
type Target = account.Target

// New returns the Target of an engine. rds may be nil when no secret uses
// RDS discovery.
func New(cfg Config, drv Driver, sm SecretsAPI, rds RDSAPI) *Target {
	return account.New(cfg, NewDriver(drv, sm, rds), sm)
}

// NewDriver returns the account.Driver (and account.MasterLocator) of an
// engine: what New puts beneath the account layer.
func NewDriver(drv Driver, sm SecretsAPI, rds RDSAPI) account.Driver {
	return &engine{drv: drv, sm: sm, rds: rds}
}

// engine adapts a Driver to account.Driver.
type engine struct {
	drv Driver
	sm  SecretsAPI
	rds RDSAPI
}

var (
	_ account.Driver        = (*engine)(nil)
	_ account.MasterLocator = (*engine)(nil)
)

// Name implements account.Driver.
func (e *engine) Name() string { return e.drv.Name() }

// Capabilities implements account.Driver: a database user can change its
// own password, and holds one at a time.
func (e *engine) Capabilities() account.Capabilities {
	return account.Capabilities{OwnPassword: true}
}

// Parse implements account.Driver: the AWS secret format; a masterarn means
// alternating users.
func (e *engine) Parse(req account.ParseRequest) (account.Account, error) {
	s, err := dbsecret.Parse(req.Value, e.drv.Defaults())
	if err != nil {
		return account.Account{}, err
	}
	a := account.Account{Username: s.Username, Password: s.Password, Strategy: s.Strategy(), Server: server(s), Value: s}
	if req.Master {
		// A master secret's own masterarn, if any, means nothing.
		a.Strategy = dbsecret.SingleUser
		return a, nil
	}
	if !e.drv.Serves(s.Engine) {
		return account.Account{}, fmt.Errorf("engine %q is not served by the %s function", s.Engine, e.drv.Name())
	}
	if a.Server == "" {
		return account.Account{}, errors.New(`secret field "host" is missing (or give "dbInstanceIdentifier" or "dbClusterIdentifier")`)
	}
	a.MasterARN = s.MasterARN
	return a, nil
}

// server names the server a secret points at, as written: two versions
// name the same server when host, port and the RDS identifiers agree.
func server(s *dbsecret.Secret) string {
	var parts []string
	if s.Host != "" {
		parts = append(parts, fmt.Sprintf("%s:%d", s.Host, s.Port))
	}
	if s.DBInstanceIdentifier != "" {
		parts = append(parts, "dbInstanceIdentifier="+s.DBInstanceIdentifier)
	}
	if s.DBClusterIdentifier != "" {
		parts = append(parts, "dbClusterIdentifier="+s.DBClusterIdentifier)
	}
	if len(parts) > 0 && s.Host == "" {
		parts = append(parts, fmt.Sprintf("port=%d", s.Port))
	}
	return strings.Join(parts, " ")
}

// Twins implements account.Driver: <user> and <user>_clone, as the AWS
// rotation templates name them.
func (e *engine) Twins(req account.TwinsRequest) (account.Twins, error) {
	base := strings.TrimSuffix(req.Username, dbsecret.CloneSuffix)
	tw := account.Twins{Base: base, Clone: base + dbsecret.CloneSuffix}
	if len(tw.Clone) > e.drv.MaxUserLen() {
		return account.Twins{}, fmt.Errorf("user name %q is %d characters long, %s allows %d: shorten the user name", tw.Clone, len(tw.Clone), e.drv.Name(), e.drv.MaxUserLen())
	}
	return tw, nil
}

// Locate implements account.Driver: the secret's host, or the endpoint of
// its RDS instance or cluster.
func (e *engine) Locate(ctx context.Context, req account.LocateRequest) (account.Location, error) {
	s := req.Account.Value.(*dbsecret.Secret)
	ep := dbsecret.Endpoint{Engine: s.Engine, Host: s.Host, Port: s.Port, DBName: s.DBName}
	switch {
	case req.At != nil:
		ep.Host, ep.Port = req.At.Host, req.At.Port
	case s.Host == "":
		r, err := e.rdsEndpoint(ctx, s.DBInstanceIdentifier, s.DBClusterIdentifier)
		if err != nil {
			return account.Location{}, err
		}
		if !e.drv.Serves(r.Engine) {
			return account.Location{}, fmt.Errorf("RDS reports engine %q for %s, which the %s function does not serve", r.Engine, r.ID, e.drv.Name())
		}
		ep.Host, ep.Port = r.Host, r.Port
		if ep.Engine == "" {
			ep.Engine = r.Engine
		}
	}
	return account.Location{Host: ep.Host, Port: ep.Port, Plaintext: !s.SSL, CABundle: s.CABundle, Detail: ep}, nil
}

// Connect implements account.Driver.
func (e *engine) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	ep := req.Location.Detail.(dbsecret.Endpoint)
	ep.TLS, ep.Timeout = req.TLS, req.Timeout
	c, err := e.drv.Connect(ctx, ep, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	return session{c}, nil
}

// NewValue implements account.Driver.
func (e *engine) NewValue(req account.NewValueRequest) (string, error) {
	return req.Account.Value.(*dbsecret.Secret).With(req.Username, req.Password)
}

// LocateMaster implements account.MasterLocator: an RDS-managed master
// secret (only username and password) belongs to the instance or cluster
// of its aws:rds tag.
func (e *engine) LocateMaster(ctx context.Context, req account.LocateMasterRequest) (account.LocateMasterResponse, error) {
	d, err := e.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(req.MasterARN)})
	if err != nil {
		return account.LocateMasterResponse{}, fmt.Errorf("describe master secret %s (masterarn): %w", req.MasterARN, err)
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
		return account.LocateMasterResponse{}, nil
	}
	ep, err := e.rdsEndpoint(ctx, inst, cluster)
	if err != nil {
		return account.LocateMasterResponse{}, fmt.Errorf("master secret %s: %w", req.MasterARN, err)
	}
	return account.LocateMasterResponse{Found: true, Host: ep.Host, Port: ep.Port, Source: "RDS " + ep.ID}, nil
}

// session adapts a Conn to account.Session.
type session struct{ c Conn }

func (s session) Probe(ctx context.Context) error { return s.c.Probe(ctx) }
func (s session) Close() error                    { return s.c.Close() }

func (s session) SetOwnPassword(ctx context.Context, req account.SetOwnPasswordRequest) error {
	return s.c.SetOwnPassword(ctx, req.Username, req.Password)
}

func (s session) SetPassword(ctx context.Context, req account.SetPasswordRequest) error {
	return s.c.SetPassword(ctx, req.Username, req.Password)
}

func (s session) EnsureClone(ctx context.Context, req account.EnsureCloneRequest) error {
	return s.c.EnsureClone(ctx, req.Original, req.Clone, req.Password)
}

// AddPassword: a database user holds one password.
func (s session) AddPassword(context.Context, account.AddPasswordRequest) error {
	return errors.ErrUnsupported
}

// RemovePasswords: a database user holds one password.
func (s session) RemovePasswords(context.Context, account.RemovePasswordsRequest) error {
	return errors.ErrUnsupported
}

// Served is a helper for Driver.Serves.
func Served(engine string, names ...string) bool {
	return engine == "" || slices.Contains(names, engine)
}
