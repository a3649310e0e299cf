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
	"strings"

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
func (c *conn) setPassword(ctx context.Context, q execer, user, password string) error {
	v, err := scramVerifier(password, nil)
	if err != nil {
		return err
	}
	lit, err := quoteVerifier(v)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" PASSWORD "+lit)
	// The verifier's fixed prefix (SCRAM-SHA-256$4096:) is no secret.
	return withhold(err, password, v[strings.IndexByte(v, ':')+1:])
}

// execer is a session or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// SetOwnPassword implements dbtarget.Conn. Any role may change its own
// password; no privilege is needed.
func (c *conn) SetOwnPassword(ctx context.Context, user, password string) error {
	return c.setPassword(ctx, c.c, user, password)
}

// SetPassword implements dbtarget.Conn; the session needs CREATEROLE.
func (c *conn) SetPassword(ctx context.Context, user, password string) error {
	return c.setPassword(ctx, c.c, user, password)
}

// EnsureClone implements dbtarget.Conn: the clone is a login role that is a
// member of the original, so it has every privilege the original has, now
// and later, without copying grants; and it has the original's attributes
// (SUPERUSER, CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS, CONNECTION
// LIMIT, VALID UNTIL) and its settings (ALTER ROLE ... [IN DATABASE ...]
// SET), which membership does not pass on. Each run makes the clone equal
// to the original again, in one transaction: an attribute the session may
// not give fails the whole step with an error naming it, and leaves the
// clone as it was (or absent).
func (c *conn) EnsureClone(ctx context.Context, original, clone, password string) error {
	for attempt := 0; ; attempt++ {
		err := pgx.BeginFunc(ctx, c.c, func(tx pgx.Tx) error {
			return c.syncClone(ctx, tx, original, clone, password)
		})
		var pgErr *pgconn.PgError
		// duplicate_object: a concurrent setSecret created the clone
		// first; the next attempt finds it.
		if attempt == 0 && errors.As(err, &pgErr) && pgErr.Code == "42710" {
			continue
		}
		return err
	}
}

func (c *conn) syncClone(ctx context.Context, tx pgx.Tx, original, clone, password string) error {
	orig, ok, err := readRole(ctx, tx, original)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("original user %s does not exist", original)
	}
	id := pgx.Identifier{clone}.Sanitize()
	have, ok, err := readRole(ctx, tx, clone)
	if err != nil {
		return err
	}
	if !ok {
		if _, err := tx.Exec(ctx, "CREATE ROLE "+id+" LOGIN INHERIT"); err != nil {
			return fmt.Errorf("create role %s: %w", clone, err)
		}
		if have, _, err = readRole(ctx, tx, clone); err != nil {
			return err
		}
	}
	want := orig
	want.attrs.inherit = true // membership passes the original's privileges
	for _, a := range want.diff(have) {
		if _, err := tx.Exec(ctx, "ALTER ROLE "+id+" "+a); err != nil {
			return fmt.Errorf("give %s the attribute %s of %s: %w", clone, a, original, err)
		}
	}
	if err := copySettings(ctx, tx, orig.settings, have.settings, clone); err != nil {
		return err
	}
	var member bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
		WHERE r.rolname = $1 AND u.rolname = $2)`, original, clone).Scan(&member); err != nil {
		return fmt.Errorf("membership of %s in %s: %w", clone, original, err)
	}
	if !member {
		if _, err := tx.Exec(ctx, "GRANT "+pgx.Identifier{original}.Sanitize()+" TO "+id); err != nil {
			return fmt.Errorf("grant %s to %s: %w", original, clone, err)
		}
	}
	if err := c.setPassword(ctx, tx, clone, password); err != nil {
		return fmt.Errorf("set password of %s: %w", clone, err)
	}
	// The settings must read back as the original's: a value the server
	// would parse differently fails here rather than changing the
	// application's behaviour quietly.
	now, _, err := readRole(ctx, tx, clone)
	if err != nil {
		return err
	}
	if name, same := sameSettings(orig.settings, now.settings); !same {
		return fmt.Errorf("setting %s of %s does not read back as %s's after copying: nothing changed", name, clone, original)
	}
	return nil
}
