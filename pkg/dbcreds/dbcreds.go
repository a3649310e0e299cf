// Package dbcreds gives an application the credentials of a database secret
// that the postgres or mysql rotation function rotates, and connects with
// them so that a rotation refuses none of the application's logins.
//
// A Source reads the secret (AWSCURRENT, cached for TTL) and remembers the
// credentials that last logged in. Connect, and the database/sql Connector
// built on it, log in with those; after an authentication failure they try
// once more with AWSCURRENT read afresh, then with AWSPENDING, then with
// AWSCURRENT read again. That covers every moment of a single-user rotation:
// between setSecret (the database takes the new password) and finishSecret
// (AWSCURRENT moves to it) only AWSPENDING logs in, and right after
// finishSecret AWSCURRENT does. With alternating users the retry is rarely
// needed: the old user keeps its password until the next rotation.
//
// The server still sees one refused login per client that tries a password
// that changed; only alternating users avoid that.
//
//	src, _ := dbcreds.New(dbcreds.Options{SecretID: arn, Secrets: secretsmanager.NewFromConfig(cfg)})
//	db := sql.OpenDB(dbcreds.NewConnector(src, openMySQL, isMySQLAuthFailure))
//
// For pgx, see package pkg/dbcreds/pgxcreds. The package imports no
// database driver. A Source is safe for concurrent use; it never logs or
// returns a password in an error.
package dbcreds

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// SecretsAPI is the Secrets Manager call a Source makes;
// *secretsmanager.Client satisfies it.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Credentials are the login of one version of the secret, and where the
// secret says the database is. Its String method leaves the password out.
type Credentials struct {
	Username string
	Password string
	Engine   string
	Host     string
	Port     int
	DBName   string
	// Stage and VersionID say where the credentials were read.
	Stage     string
	VersionID string
}

// String names the credentials without the password.
func (c Credentials) String() string {
	return fmt.Sprintf("%s@%s:%s (%s %s)", c.Username, c.Host, strconv.Itoa(c.Port), c.Stage, c.VersionID)
}

// GoString names the credentials without the password, for %#v.
func (c Credentials) GoString() string { return c.String() }

// Options configure a Source.
type Options struct {
	// SecretID is the ARN or name of the database secret.
	SecretID string
	Secrets  SecretsAPI
	// TTL is how long credentials that log in are used before AWSCURRENT
	// is read again. Default 5 minutes. A rotation does not wait for it:
	// a refused login reads the secret at once.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Source reads and caches the credentials of one secret.
type Source struct {
	opt Options

	mu   sync.Mutex
	good *cached            // last credentials that logged in, or AWSCURRENT as read
	read map[string]*cached // last read of each stage
	rmu  sync.Mutex         // serialises reads, so that concurrent failures share one
}

type cached struct {
	c  Credentials
	at time.Time
	ok bool // the stage holds a value
}

// New returns a Source. It reads nothing until first used.
func New(opt Options) (*Source, error) {
	if opt.SecretID == "" {
		return nil, errors.New("dbcreds: no SecretID")
	}
	if opt.Secrets == nil {
		return nil, errors.New("dbcreds: no Secrets Manager client")
	}
	if opt.TTL <= 0 {
		opt.TTL = 5 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Source{opt: opt, read: map[string]*cached{}}, nil
}

// Current returns the credentials to try first: those that last logged in,
// or AWSCURRENT once they are older than the TTL.
func (s *Source) Current(ctx context.Context) (Credentials, error) {
	s.mu.Lock()
	g := s.good
	s.mu.Unlock()
	if g != nil && s.opt.Now().Sub(g.at) < s.opt.TTL {
		return g.c, nil
	}
	c, ok, err := s.stage(ctx, "AWSCURRENT", s.opt.Now())
	if err != nil {
		return Credentials{}, err
	}
	if !ok {
		return Credentials{}, fmt.Errorf("dbcreds: %s has no AWSCURRENT value", s.opt.SecretID)
	}
	s.remember(c)
	return c, nil
}

// Fresh returns AWSCURRENT as read at most maxAge ago, reading it again
// when the last read is older. It is for hooks that cannot retry a refused
// login (pgxpool's BeforeConnect): they follow a rotation within maxAge.
func (s *Source) Fresh(ctx context.Context, maxAge time.Duration) (Credentials, error) {
	c, ok, err := s.stage(ctx, "AWSCURRENT", s.opt.Now().Add(-maxAge))
	if err != nil {
		return Credentials{}, err
	}
	if !ok {
		return Credentials{}, fmt.Errorf("dbcreds: %s has no AWSCURRENT value", s.opt.SecretID)
	}
	return c, nil
}

// Pending returns AWSPENDING as read at most maxAge ago; ok is false when
// no rotation is open (no version carries AWSPENDING, or it is the version
// of AWSCURRENT, which Secrets Manager leaves labelled for a moment after
// finishSecret).
func (s *Source) Pending(ctx context.Context, maxAge time.Duration) (Credentials, bool, error) {
	c, ok, err := s.stage(ctx, "AWSPENDING", s.opt.Now().Add(-maxAge))
	if err != nil || !ok {
		return Credentials{}, false, err
	}
	cur, err := s.Fresh(ctx, maxAge)
	if err != nil {
		return Credentials{}, false, err
	}
	if cur.VersionID == c.VersionID {
		return Credentials{}, false, nil
	}
	return c, true, nil
}

// remember keeps c as the credentials to try first.
func (s *Source) remember(c Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.good = &cached{c: c, at: s.opt.Now(), ok: true}
}

// stage returns the credentials of stage as read at or after notBefore: a
// read that another caller made since is shared, so that a rotation that
// refuses many logins at once costs one read. ok is false when no version
// carries the stage.
func (s *Source) stage(ctx context.Context, stage string, notBefore time.Time) (Credentials, bool, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if r := s.read[stage]; r != nil && !r.at.Before(notBefore) {
		return r.c, r.ok, nil
	}
	at := s.opt.Now()
	out, err := s.opt.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(s.opt.SecretID), VersionStage: aws.String(stage),
	})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			s.read[stage] = &cached{at: at}
			return Credentials{}, false, nil
		}
		return Credentials{}, false, fmt.Errorf("dbcreds: read %s of %s: %w", stage, s.opt.SecretID, err)
	}
	if out.SecretString == nil {
		s.read[stage] = &cached{at: at}
		return Credentials{}, false, nil
	}
	sec, err := dbsecret.Parse(*out.SecretString, dbsecret.Defaults{})
	if err != nil {
		return Credentials{}, false, fmt.Errorf("dbcreds: %s of %s: %w", stage, s.opt.SecretID, err)
	}
	c := Credentials{
		Username: sec.Username, Password: sec.Password, Engine: sec.Engine, Host: sec.Host, Port: sec.Port, DBName: sec.DBName,
		Stage: stage, VersionID: aws.ToString(out.VersionId),
	}
	s.read[stage] = &cached{c: c, at: at, ok: true}
	return c, true, nil
}

// Connect logs in with connect, which makes one connection with the
// credentials it is given, and returns the connection. When isAuthFailure
// reports that the database refused the credentials, it tries AWSCURRENT
// read afresh, then AWSPENDING, then AWSCURRENT once more, each only if it
// differs from what was tried, and remembers what logged in. Any other
// error is returned at once.
func Connect[C any](ctx context.Context, s *Source, connect func(context.Context, Credentials) (C, error), isAuthFailure func(error) bool) (C, error) {
	var zero C
	first, err := s.Current(ctx)
	if err != nil {
		return zero, err
	}
	started := s.opt.Now()
	conn, err := connect(ctx, first)
	if err == nil || !isAuthFailure(err) {
		return conn, err
	}
	tried := []Credentials{first}
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING", "AWSCURRENT"} {
		c, ok, rerr := s.stage(ctx, stage, started)
		if rerr != nil {
			return zero, errors.Join(err, rerr)
		}
		started = s.opt.Now()
		if !ok || triedAlready(tried, c) {
			continue
		}
		tried = append(tried, c)
		conn, cerr := connect(ctx, c)
		if cerr == nil {
			s.remember(c)
			return conn, nil
		}
		if !isAuthFailure(cerr) {
			return zero, cerr
		}
		err = cerr
	}
	return zero, err
}

func triedAlready(tried []Credentials, c Credentials) bool {
	for _, t := range tried {
		if t.Username == c.Username && t.Password == c.Password {
			return true
		}
	}
	return false
}

// IsAuthFailure reports whether err is a login refused for its credentials
// by a driver whose errors carry a SQLSTATE (pgx's *pgconn.PgError and
// database/sql drivers built on it): 28P01 invalid_password or 28000
// invalid_authorization_specification. For go-sql-driver/mysql, test for
// *mysql.MySQLError number 1045 (see the example).
func IsAuthFailure(err error) bool {
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch st.SQLState() {
		case "28P01", "28000":
			return true
		}
	}
	return false
}

// Connector is a database/sql driver.Connector that logs in through a
// Source: sql.OpenDB(dbcreds.NewConnector(...)) gives a pool whose new
// connections survive a rotation.
type Connector struct {
	src           *Source
	open          func(Credentials) (driver.Connector, error)
	isAuthFailure func(error) bool
}

// NewConnector returns a Connector. open makes the driver's connector for
// given credentials (mysql.NewConnector, pgx's stdlib.GetConnector ...),
// with everything else (host, TLS, database) from the application's own
// configuration. isAuthFailure tells a refused login; nil means
// IsAuthFailure.
func NewConnector(src *Source, open func(Credentials) (driver.Connector, error), isAuthFailure func(error) bool) *Connector {
	if isAuthFailure == nil {
		isAuthFailure = IsAuthFailure
	}
	return &Connector{src: src, open: open, isAuthFailure: isAuthFailure}
}

// Connect implements driver.Connector.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	return Connect(ctx, c.src, func(ctx context.Context, cr Credentials) (driver.Conn, error) {
		dc, err := c.open(cr)
		if err != nil {
			return nil, err
		}
		return dc.Connect(ctx)
	}, c.isAuthFailure)
}

// Driver implements driver.Connector.
func (c *Connector) Driver() driver.Driver {
	dc, err := c.open(Credentials{})
	if err != nil {
		return nil
	}
	return dc.Driver()
}
