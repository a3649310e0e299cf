// Package postgres is the PostgreSQL driver of the database rotation target
// (internal/dbtarget): connecting with pgx, and the role statements of both
// strategies. New passwords reach the server only as SCRAM-SHA-256
// verifiers computed here.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
)

// MaxIdentifierLen is NAMEDATALEN-1: PostgreSQL truncates longer names,
// which would make <user>_clone silently collide or miss.
const MaxIdentifierLen = 63

// Driver is the PostgreSQL dbtarget.Driver.
type Driver struct{}

var _ dbtarget.Driver = Driver{}

// Name implements dbtarget.Driver.
func (Driver) Name() string { return "postgres" }

// Serves implements dbtarget.Driver.
func (Driver) Serves(engine string) bool {
	return dbtarget.Served(engine, "postgres", "postgresql", "aurora-postgresql")
}

// Defaults implements dbtarget.Driver: the defaults the AWS documentation gives.
func (Driver) Defaults() dbsecret.Defaults { return dbsecret.Defaults{Port: 5432, DBName: "postgres"} }

// MaxUserLen implements dbtarget.Driver.
func (Driver) MaxUserLen() int { return MaxIdentifierLen }

// Connect implements dbtarget.Driver. TLS is what ep says and nothing else:
// no fallback to plaintext (pgx's sslmode=prefer would add one). The
// password is only ever used in a SCRAM-SHA-256 exchange: a server that
// asks for it in cleartext or as MD5 (any server a secret can name could)
// gets nothing, and Connect fails with a RefusedAuthError, classified as
// cannot-reach since the server never judged the credentials.
func (Driver) Connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (dbtarget.Conn, error) {
	// ParseConfig("") would read PG* variables of the environment; start
	// from an explicit string and set every field that matters.
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, fmt.Errorf("pgx config: %w", err)
	}
	cfg.Host = ep.Host
	cfg.Port = uint16(ep.Port)
	cfg.Database = ep.DBName
	cfg.User = user
	cfg.Password = password
	cfg.TLSConfig = ep.TLS
	cfg.Fallbacks = nil
	cfg.ConnectTimeout = ep.Timeout
	cfg.RuntimeParams = map[string]string{"application_name": "secrets-rotation"}
	// libpq's require_auth: only a completed SCRAM exchange logs in (this
	// also refuses a server that skips authentication). authGuard refuses
	// the same requests first and names them.
	cfg.RequireAuth = "scram-sha-256"
	// Over TLS, SCRAM-SHA-256-PLUS binds the exchange to the server's
	// certificate when the server offers it; "require" would lock out
	// servers and poolers without it (PgBouncer, some proxies).
	cfg.ChannelBinding = "prefer"
	cfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(&authGuard{r: r}, w)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(err, user, ep)
	}
	return &conn{c: c}, nil
}

// classify tells a refused login (invalid_password 28P01 or
// invalid_authorization_specification 28000) from a server not reached.
func classify(err error, user string, ep dbsecret.Endpoint) error {
	kind := dbsecret.ErrCannotReach
	var refused *RefusedAuthError
	if errors.As(err, &refused) {
		// pgx's wrapping adds nothing the endpoint does not say.
		return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.String(), Err: refused}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
		kind = dbsecret.ErrCannotLogIn
	}
	return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.String(), Err: err}
}

type conn struct{ c *pgx.Conn }

func (c *conn) Close() error { return c.c.Close(context.Background()) }

func (c *conn) Probe(ctx context.Context) error {
	var one int
	return c.c.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// setPassword runs ALTER ROLE <user> PASSWORD '<verifier>'.
func (c *conn) setPassword(ctx context.Context, user, password string) error {
	v, err := scramVerifier(password, nil)
	if err != nil {
		return err
	}
	lit, err := quoteVerifier(v)
	if err != nil {
		return err
	}
	_, err = c.c.Exec(ctx, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" PASSWORD "+lit)
	return err
}

// SetOwnPassword implements dbtarget.Conn. Any role may change its own
// password; no privilege is needed.
func (c *conn) SetOwnPassword(ctx context.Context, user, password string) error {
	return c.setPassword(ctx, user, password)
}

// SetPassword implements dbtarget.Conn; the session needs CREATEROLE.
func (c *conn) SetPassword(ctx context.Context, user, password string) error {
	return c.setPassword(ctx, user, password)
}

// EnsureClone implements dbtarget.Conn: the clone is a login role that is a
// member of the original, so it has every privilege the original has, now
// and later, without copying grants.
func (c *conn) EnsureClone(ctx context.Context, original, clone, password string) error {
	var exists bool
	if err := c.c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", original).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("original user %s does not exist", original)
	}
	if err := c.c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", clone).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		_, err := c.c.Exec(ctx, "CREATE ROLE "+pgx.Identifier{clone}.Sanitize()+" LOGIN INHERIT")
		var pgErr *pgconn.PgError
		// duplicate_object: a concurrent setSecret created it first.
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42710") {
			return fmt.Errorf("create role %s: %w", clone, err)
		}
	}
	// GRANT of a membership the role already has is only a notice.
	if _, err := c.c.Exec(ctx, "GRANT "+pgx.Identifier{original}.Sanitize()+" TO "+pgx.Identifier{clone}.Sanitize()); err != nil {
		return fmt.Errorf("grant %s to %s: %w", original, clone, err)
	}
	return c.setPassword(ctx, clone, password)
}
