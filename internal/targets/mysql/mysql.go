// Package mysql is the MySQL 8 / MariaDB 10.11+ driver of the database
// rotation target (internal/dbtarget), over github.com/go-sql-driver/mysql.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
)

// MaxUserLen is MySQL 8's limit on user names (MariaDB allows 80; the
// smaller limit keeps a secret portable between the two).
const MaxUserLen = 32

// The errors of a refused login: ER_ACCESS_DENIED_ERROR (wrong password or
// no such user) and ER_ACCESS_DENIED_NO_PASSWORD_ERROR, which MariaDB
// sometimes gives instead for an account that does not exist (seen when
// the pending clone is not created yet).
const (
	errAccessDenied           = 1045
	errAccessDeniedNoPassword = 1698
)

// Driver is the MySQL/MariaDB dbtarget.Driver.
type Driver struct{}

var _ dbtarget.Driver = Driver{}

// Name implements dbtarget.Driver.
func (Driver) Name() string { return "mysql" }

// Serves implements dbtarget.Driver.
func (Driver) Serves(engine string) bool {
	return dbtarget.Served(engine, "mysql", "mariadb", "aurora-mysql", "aurora")
}

// Defaults implements dbtarget.Driver: port 3306 and no default database.
func (Driver) Defaults() dbsecret.Defaults { return dbsecret.Defaults{Port: 3306} }

// MaxUserLen implements dbtarget.Driver.
func (Driver) MaxUserLen() int { return MaxUserLen }

// Connect implements dbtarget.Driver. Parameters are interpolated by the
// driver, with its escaping, because ALTER USER and CREATE USER are not
// preparable on every server version.
func (Driver) Connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (dbtarget.Conn, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	cfg.DBName = ep.DBName
	cfg.Timeout = ep.Timeout
	cfg.TLS = ep.TLS
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, classify(err, user, ep)
	}
	return &conn{db: db, c: c}, nil
}

func classify(err error, user string, ep dbsecret.Endpoint) error {
	kind := dbsecret.ErrCannotReach
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && (myErr.Number == errAccessDenied || myErr.Number == errAccessDeniedNoPassword) {
		kind = dbsecret.ErrCannotLogIn
	}
	return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.String(), Err: err}
}

type conn struct {
	db *sql.DB
	c  *sql.Conn
}

func (c *conn) Close() error {
	c.c.Close()
	return c.db.Close()
}

func (c *conn) Probe(ctx context.Context) error {
	var one int
	return c.c.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// SetOwnPassword implements dbtarget.Conn with SET PASSWORD, which needs no
// privilege for one's own account (MariaDB's ALTER USER would need CREATE
// USER). The two servers spell it differently: MySQL 8 removed PASSWORD()
// and takes the plaintext; MariaDB hashes it with PASSWORD().
func (c *conn) SetOwnPassword(ctx context.Context, _, password string) error {
	var version string
	if err := c.c.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		return err
	}
	stmt := "SET PASSWORD = ?"
	if strings.Contains(strings.ToLower(version), "mariadb") {
		stmt = "SET PASSWORD = PASSWORD(?)"
	}
	_, err := c.c.ExecContext(ctx, stmt, password)
	return err
}

// host returns the host part of the one account named user.
func (c *conn) host(ctx context.Context, user string) (string, bool, error) {
	rows, err := c.c.QueryContext(ctx, "SELECT Host FROM mysql.user WHERE User = ?", user)
	if err != nil {
		return "", false, fmt.Errorf("look up account %s: %w", user, err)
	}
	defer rows.Close()
	var hosts []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return "", false, err
		}
		hosts = append(hosts, h)
	}
	if err := rows.Err(); err != nil {
		return "", false, err
	}
	switch len(hosts) {
	case 0:
		return "", false, nil
	case 1:
		return hosts[0], true, nil
	}
	return "", false, fmt.Errorf("user %s has %d accounts (hosts %s): which one to rotate is ambiguous", user, len(hosts), strings.Join(hosts, ", "))
}

// SetPassword implements dbtarget.Conn; the session needs CREATE USER (or
// UPDATE on the mysql schema) and SELECT on mysql.user.
func (c *conn) SetPassword(ctx context.Context, user, password string) error {
	host, ok, err := c.host(ctx, user)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("user %s does not exist", user)
	}
	_, err = c.c.ExecContext(ctx, "ALTER USER ?@? IDENTIFIED BY ?", user, host, password)
	return err
}

// EnsureClone implements dbtarget.Conn: the clone is created at the
// original's host and given each of the original's grants, GRANT OPTION
// included. The session needs CREATE USER and every privilege it passes on,
// with GRANT OPTION.
func (c *conn) EnsureClone(ctx context.Context, original, clone, password string) error {
	host, ok, err := c.host(ctx, original)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("original user %s does not exist", original)
	}
	if _, err := c.c.ExecContext(ctx, "CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?", clone, host, password); err != nil {
		return fmt.Errorf("create user %s: %w", clone, err)
	}
	grants, err := c.grants(ctx, original, host)
	if err != nil {
		return err
	}
	for _, g := range grants {
		stmt, err := regrant(g, grantee(original, host), grantee(clone, host))
		if err != nil {
			return err
		}
		if stmt == "" {
			continue
		}
		if _, err := c.c.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("copy grant to %s: %w", clone, err)
		}
	}
	_, err = c.c.ExecContext(ctx, "ALTER USER ?@? IDENTIFIED BY ?", clone, host, password)
	return err
}

func (c *conn) grants(ctx context.Context, user, host string) ([]string, error) {
	rows, err := c.c.QueryContext(ctx, "SHOW GRANTS FOR ?@?", user, host)
	if err != nil {
		return nil, fmt.Errorf("show grants for %s: %w", user, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// grantee quotes an account the way SHOW GRANTS prints it.
func grantee(user, host string) string {
	q := func(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
	return q(user) + "@" + q(host)
}

// regrant turns a line of SHOW GRANTS for from into the same grant for to.
// What follows the grantee is dropped except WITH GRANT/ADMIN OPTION: it
// would be the original's password hash (MariaDB prints IDENTIFIED BY
// PASSWORD) or account options, not privileges. USAGE grants nothing and is
// skipped.
func regrant(line, from, to string) (string, error) {
	if !strings.HasPrefix(line, "GRANT ") {
		return "", fmt.Errorf("unexpected SHOW GRANTS line for %s", from)
	}
	i := strings.Index(line, " TO "+from)
	if i < 0 {
		return "", fmt.Errorf("SHOW GRANTS line does not name %s", from)
	}
	head, tail := line[:i], line[i+len(" TO "+from):]
	if strings.HasPrefix(head, "GRANT USAGE ON *.*") {
		return "", nil
	}
	stmt := head + " TO " + to
	for _, opt := range []string{" WITH GRANT OPTION", " WITH ADMIN OPTION"} {
		if strings.Contains(tail, opt) {
			stmt += opt
		}
	}
	return stmt, nil
}
