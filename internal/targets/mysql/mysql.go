// Package mysql is the MySQL 8 / MariaDB 10.11+ driver of the database
// rotation target (internal/dbtarget), over github.com/go-sql-driver/mysql.
// New passwords reach the server as the hash its authentication plugin
// stores, computed here (hash.go), except in one case MySQL 8 allows no
// other way: an account without privileges changing its own password.
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
	"github.com/secrets-rotation/secrets-rotation/internal/redact"
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

// errUnknownSystemVariable: a variable this server version lacks.
const errUnknownSystemVariable = 1193

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

// Connect implements dbtarget.Driver. TLS is what ep says and nothing
// else: no fallback to plaintext. The authentication plugins the driver
// may use are stated here rather than left to defaults: never
// mysql_clear_password (the password itself on the wire, for the server
// to keep) nor mysql_old_password (broken pre-4.1 hashing); the challenge-
// response plugins (mysql_native_password, caching_sha2_password's fast
// path, ed25519) send no password. MySQL 8's caching_sha2_password full
// authentication sends the password to the server it verified over TLS;
// without TLS, go-sql-driver encrypts it with a key the server sends, which
// only TLS makes trustworthy. Parameters are interpolated by the driver,
// with its escaping, because ALTER USER and CREATE USER are not preparable
// on every server version.
func (Driver) Connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (dbtarget.Conn, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = user, password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	cfg.DBName = ep.DBName
	cfg.Timeout = ep.Timeout
	cfg.TLS = ep.TLS
	cfg.AllowFallbackToPlaintext = false
	cfg.AllowCleartextPasswords = false
	cfg.AllowOldPasswords = false
	cfg.AllowNativePasswords = true
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql config: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	c, err := db.Conn(ctx)
	if errors.Is(err, mysql.ErrMalformPkt) {
		// go-sql-driver drops a trailing zero byte of the authentication
		// data MariaDB sends for ed25519, though that data is a raw
		// 32-byte nonce: one ed25519 login in 256 fails as a "malformed
		// packet". A second attempt gets a fresh nonce.
		c, err = db.Conn(ctx)
	}
	if err != nil {
		db.Close()
		return nil, classify(err, user, ep)
	}
	return &conn{db: db, c: c, ep: ep}, nil
}

// errWeakAuth replaces the driver's refusals of the cleartext and old
// password plugins, whose text suggests turning them on.
var errWeakAuth = errors.New("the server asked for the password in cleartext (mysql_clear_password) or in the pre-4.1 form (mysql_old_password), forms this function refuses: no password was sent")

func classify(err error, user string, ep dbsecret.Endpoint) error {
	kind := dbsecret.ErrCannotReach
	if errors.Is(err, mysql.ErrCleartextPassword) || errors.Is(err, mysql.ErrOldPassword) {
		return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.String(), Err: errWeakAuth}
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && (myErr.Number == errAccessDenied || myErr.Number == errAccessDeniedNoPassword) {
		kind = dbsecret.ErrCannotLogIn
	}
	return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.String(), Err: err}
}

type conn struct {
	db *sql.DB
	c  *sql.Conn
	ep dbsecret.Endpoint // for logging in as a new clone
	// mariadb caches the server flavor once known.
	mariadb *bool
}

func (c *conn) Close() error {
	c.c.Close()
	return c.db.Close()
}

func (c *conn) Probe(ctx context.Context) error {
	var one int
	return c.c.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// isMariaDB tells MariaDB from MySQL: they spell password statements
// differently and store different hashes.
func (c *conn) isMariaDB(ctx context.Context) (bool, error) {
	if c.mariadb == nil {
		var version string
		if err := c.c.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
			return false, fmt.Errorf("server version: %w", err)
		}
		m := strings.Contains(strings.ToLower(version), "mariadb")
		c.mariadb = &m
	}
	return *c.mariadb, nil
}

// execSecret runs a statement that carries a password or its hash. A
// server error can quote the statement (a syntax error says "near
// '...'"): such a message is withheld, the error number kept.
func (c *conn) execSecret(ctx context.Context, secrets []string, query string, args ...any) error {
	_, err := c.c.ExecContext(ctx, query, args...)
	return withhold(err, secrets...)
}

// SetOwnPassword implements dbtarget.Conn with SET PASSWORD, which needs no
// privilege for one's own account (ALTER USER would need CREATE USER).
// MariaDB takes the stored form of the account's plugin, computed here. MySQL
// 8 takes only the plaintext there: an account can change its own password
// by a hash only with CREATE USER (sql_parse.cc: only ALTER USER ...
// IDENTIFIED BY on oneself is unprivileged). MySQL rewrites the password out
// of its general, slow and binary logs.
func (c *conn) SetOwnPassword(ctx context.Context, _, password string) error {
	mariadb, err := c.isMariaDB(ctx)
	if err != nil {
		return err
	}
	if !mariadb {
		return c.execSecret(ctx, []string{password}, "SET PASSWORD = ?", password)
	}
	var current string
	if err := c.c.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&current); err != nil {
		return fmt.Errorf("current user: %w", err)
	}
	i := strings.LastIndexByte(current, '@')
	if i < 0 {
		return fmt.Errorf("CURRENT_USER() is not user@host")
	}
	user, host := current[:i], current[i+1:]
	plugin, err := c.plugin(ctx, true, user, host)
	if err != nil {
		return err
	}
	hash, err := c.storedForm(ctx, true, user, plugin, password)
	if err != nil {
		return err
	}
	return c.execSecret(ctx, []string{password, hash}, "SET PASSWORD = ?", hash)
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

// plugin returns the authentication plugin of user@host: on MariaDB from
// SHOW CREATE USER (which any account may run for itself), on MySQL from
// mysql.user.
func (c *conn) plugin(ctx context.Context, mariadb bool, user, host string) (string, error) {
	if !mariadb {
		var p string
		if err := c.c.QueryRowContext(ctx, "SELECT plugin FROM mysql.user WHERE User = ? AND Host = ?", user, host).Scan(&p); err != nil {
			return "", fmt.Errorf("authentication plugin of %s: %w", user, err)
		}
		return p, nil
	}
	var create string
	if err := c.c.QueryRowContext(ctx, "SHOW CREATE USER ?@?", user, host).Scan(&create); err != nil {
		return "", fmt.Errorf("show create user %s: %w", user, withhold(err))
	}
	p, err := pluginOf(create, grantee(user, host))
	if err != nil {
		return "", fmt.Errorf("account %s: %w", user, err)
	}
	return p, nil
}

// pluginOf reads the authentication plugin from MariaDB's SHOW CREATE USER
// line for account (quoted as the server quotes it). The line holds the
// account's hash: nothing of it goes into an error.
func pluginOf(line, account string) (string, error) {
	rest, ok := strings.CutPrefix(line, "CREATE USER "+account)
	if !ok {
		return "", errors.New("SHOW CREATE USER names another account")
	}
	if !strings.HasPrefix(rest, " IDENTIFIED ") {
		return pluginNative, nil // no password: the default plugin
	}
	if strings.HasPrefix(rest, " IDENTIFIED BY PASSWORD ") {
		return pluginNative, nil
	}
	via, ok := strings.CutPrefix(rest, " IDENTIFIED VIA ")
	if !ok {
		return "", errors.New("SHOW CREATE USER has an IDENTIFIED clause this function does not know")
	}
	end := strings.IndexFunc(via, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	if end < 0 {
		end = len(via)
	}
	plugin, after := via[:end], via[end:]
	if strings.HasPrefix(after, " USING '") {
		// Skip the quoted authentication string ('' is a quote).
		i := len(" USING '")
		for i < len(after) {
			if after[i] == '\\' {
				i += 2
				continue
			}
			if after[i] == '\'' {
				if i+1 < len(after) && after[i+1] == '\'' {
					i += 2
					continue
				}
				break
			}
			i++
		}
		after = after[min(i+1, len(after)):]
	}
	if strings.HasPrefix(after, " OR ") {
		return "", fmt.Errorf("authenticates by more than one plugin (%s OR ...): the function rotates accounts with one password plugin only", plugin)
	}
	return plugin, nil
}

// storedForm returns what the server stores for password under plugin.
func (c *conn) storedForm(ctx context.Context, mariadb bool, user, plugin, password string) (string, error) {
	switch {
	case plugin == pluginNative || plugin == "":
		return nativeHash(password), nil
	case mariadb && plugin == pluginEd25519:
		return ed25519Hash(password)
	case !mariadb && plugin == pluginCachingSHA:
		rounds, err := c.sha2Rounds(ctx)
		if err != nil {
			return "", err
		}
		return cachingSHA2Hash(password, nil, rounds)
	}
	return "", fmt.Errorf("account %s authenticates with %s: the function sets passwords of mysql_native_password, ed25519 (MariaDB) and caching_sha2_password (MySQL) accounts, as hashes it computes", user, plugin)
}

// sha2Rounds is MySQL's caching_sha2_password_digest_rounds (8.0.24 and
// later), 5000 before.
func (c *conn) sha2Rounds(ctx context.Context) (int, error) {
	var rounds int
	err := c.c.QueryRowContext(ctx, "SELECT @@GLOBAL.caching_sha2_password_digest_rounds").Scan(&rounds)
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && myErr.Number == errUnknownSystemVariable {
		return 5000, nil
	}
	if err != nil {
		return 0, fmt.Errorf("caching_sha2_password_digest_rounds: %w", err)
	}
	return rounds, nil
}

// identifiedAs is the clause that sets an account's stored form, with one
// placeholder for it. plugin comes from the server (one of the three
// storedForm accepts), never from a secret.
func identifiedAs(mariadb bool, plugin string) string {
	if plugin == "" {
		plugin = pluginNative
	}
	if mariadb {
		return " IDENTIFIED VIA " + plugin + " USING ?"
	}
	return " IDENTIFIED WITH " + plugin + " AS ?"
}

// SetPassword implements dbtarget.Conn: ALTER USER with the hash of the
// account's own plugin. The session needs CREATE USER and SELECT on the
// mysql schema (for mysql.user and SHOW CREATE USER).
func (c *conn) SetPassword(ctx context.Context, user, password string) error {
	mariadb, err := c.isMariaDB(ctx)
	if err != nil {
		return err
	}
	host, ok, err := c.host(ctx, user)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("user %s does not exist", user)
	}
	plugin, err := c.plugin(ctx, mariadb, user, host)
	if err != nil {
		return err
	}
	hash, err := c.storedForm(ctx, mariadb, user, plugin, password)
	if err != nil {
		return err
	}
	return c.execSecret(ctx, []string{password, hash}, "ALTER USER ?@?"+identifiedAs(mariadb, plugin), user, host, hash)
}

// EnsureClone implements dbtarget.Conn: the clone is created at the
// original's host with the original's authentication plugin and given each
// of the original's grants, GRANT and ADMIN OPTION included, and its
// default role (MariaDB prints it in SHOW GRANTS as SET DEFAULT ROLE). The
// session needs CREATE USER, SELECT on the mysql schema and every privilege
// and role it passes on, with GRANT or ADMIN OPTION.
func (c *conn) EnsureClone(ctx context.Context, original, clone, password string) error {
	mariadb, err := c.isMariaDB(ctx)
	if err != nil {
		return err
	}
	host, ok, err := c.host(ctx, original)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("original user %s does not exist", original)
	}
	plugin, err := c.plugin(ctx, mariadb, original, host)
	if err != nil {
		return err
	}
	hash, err := c.storedForm(ctx, mariadb, original, plugin, password)
	if err != nil {
		return err
	}
	secrets := []string{password, hash}
	if err := c.execSecret(ctx, secrets, "CREATE USER IF NOT EXISTS ?@?"+identifiedAs(mariadb, plugin), clone, host, hash); err != nil {
		return fmt.Errorf("create user %s: %w", clone, err)
	}
	grants, err := c.grants(ctx, original, host)
	if err != nil {
		return err
	}
	from, to := grantee(original, host), grantee(clone, host)
	wantRole := ""
	for _, g := range grants {
		if role, ok, err := defaultRole(g, from); ok {
			if err != nil {
				return err
			}
			wantRole = role
			continue
		}
		stmt, err := regrant(g, from, to)
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
	if err := c.execSecret(ctx, secrets, "ALTER USER ?@?"+identifiedAs(mariadb, plugin), clone, host, hash); err != nil {
		return fmt.Errorf("set password of %s: %w", clone, err)
	}
	return c.ensureDefaultRole(ctx, clone, host, password, wantRole)
}

// ensureDefaultRole gives clone the default role role ("" for none) unless
// it has it. MariaDB lets an account set its own default role without any
// privilege but asks UPDATE on the mysql schema to set another's, so the
// clone does it itself, in a session of its own.
func (c *conn) ensureDefaultRole(ctx context.Context, clone, host, password, role string) error {
	grants, err := c.grants(ctx, clone, host)
	if err != nil {
		return err
	}
	have := ""
	for _, g := range grants {
		if r, ok, err := defaultRole(g, grantee(clone, host)); ok {
			if err != nil {
				return err
			}
			have = r
		}
	}
	if have == role {
		return nil
	}
	cc, err := Driver{}.Connect(ctx, c.ep, clone, password)
	if err != nil {
		return fmt.Errorf("log in as %s to set its default role: %w", clone, err)
	}
	defer cc.Close()
	stmt := "SET DEFAULT ROLE NONE"
	if role != "" {
		stmt = "SET DEFAULT ROLE " + quoteIdent(role)
	}
	if _, err := cc.(*conn).c.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("set default role of %s: %w", clone, err)
	}
	return nil
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

// quoteIdent quotes a name the way SHOW GRANTS prints it.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// grantee quotes an account the way SHOW GRANTS prints it.
func grantee(user, host string) string { return quoteIdent(user) + "@" + quoteIdent(host) }

// defaultRole reads MariaDB's "SET DEFAULT ROLE `r` FOR `u`@`h`" line of
// SHOW GRANTS for account: ok reports whether line is one, role is the
// role's name.
func defaultRole(line, account string) (role string, ok bool, err error) {
	q, found := strings.CutPrefix(line, "SET DEFAULT ROLE ")
	if !found {
		return "", false, nil
	}
	q, found = strings.CutSuffix(q, " FOR "+account)
	if !found {
		return "", true, fmt.Errorf("SET DEFAULT ROLE line of SHOW GRANTS does not name %s", account)
	}
	if len(q) < 2 || q[0] != '`' || q[len(q)-1] != '`' || strings.Contains(strings.ReplaceAll(q[1:len(q)-1], "``", ""), "`") {
		return "", true, errors.New("SET DEFAULT ROLE line of SHOW GRANTS does not name one quoted role")
	}
	return strings.ReplaceAll(q[1:len(q)-1], "``", "`"), true, nil
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

// withhold keeps back the message of a server error that quotes any part of
// secrets (six characters or more), keeping its number and SQLSTATE.
func withhold(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		if redact.Quotes(myErr.Message, secrets...) {
			return &mysql.MySQLError{Number: myErr.Number, SQLState: myErr.SQLState,
				Message: "(message withheld: it quotes the statement, which holds a password or its hash)"}
		}
		return err
	}
	if redact.Quotes(err.Error(), secrets...) {
		return errors.New("statement failed (message withheld: it quotes a password or its hash)")
	}
	return err
}
