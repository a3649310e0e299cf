// Package dbtarget is the rotation target of the database functions: the
// single-user and alternating-users strategies, written once over a Driver
// that each engine (PostgreSQL, MySQL/MariaDB) implements.
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
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/password"
)

// DefaultExcludeCharacters are left out of generated passwords unless
// EXCLUDE_CHARACTERS says otherwise: each of them needs quoting in a URL, a
// DSN or a libpq/ODBC connection string, where clients get it wrong.
const DefaultExcludeCharacters = "/@\"'\\ :?#[]%`"

const defaultConnectTimeout = 5 * time.Second

// Config is the configuration of a Target. Everything in it comes from the
// function's own settings, which the function trusts; nothing in it comes
// from a secret.
type Config struct {
	Password password.Policy
	// CABundle is a PEM file trusted besides the system roots (DB_CA_BUNDLE).
	CABundle string
	// ConnectTimeout bounds one connection attempt; the invocation's
	// deadline bounds it further.
	ConnectTimeout time.Duration
	// MasterAllowedServers are the servers ("host:port", host in lower
	// case) where a master secret that names no server of its own may be
	// used: the user secret's server must be one of them.
	MasterAllowedServers []string
	// MasterAllowedUsers, when not empty, are the base users whose
	// passwords the master user may set: exact names, or prefixes that end
	// in "*".
	MasterAllowedUsers []string
	// BundleDir is the function's own directory, where a secret's
	// "ca_bundle" (a bare file name) is looked up: $LAMBDA_TASK_ROOT, or
	// the directory of the executable.
	BundleDir string
}

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	p, err := password.PolicyFromEnv(func(k string) string {
		if v := getenv(k); k == "EXCLUDE_CHARACTERS" && v == "" {
			return DefaultExcludeCharacters
		}
		return getenv(k)
	})
	if err != nil {
		return Config{}, err
	}
	c.Password = p
	c.CABundle = strings.TrimSpace(getenv("DB_CA_BUNDLE"))
	if c.CABundle != "" {
		if _, err := os.Stat(c.CABundle); err != nil {
			return Config{}, fmt.Errorf("DB_CA_BUNDLE: %w", err)
		}
	}
	c.ConnectTimeout = defaultConnectTimeout
	if s := strings.TrimSpace(getenv("DB_CONNECT_TIMEOUT")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("DB_CONNECT_TIMEOUT=%q is not a positive Go duration such as 5s", s)
		}
		c.ConnectTimeout = d
	}
	if c.MasterAllowedServers, err = parseServers(getenv("MASTER_ALLOWED_SERVERS")); err != nil {
		return Config{}, err
	}
	if c.MasterAllowedUsers, err = parseUsers(getenv("MASTER_ALLOWED_USERS")); err != nil {
		return Config{}, err
	}
	c.BundleDir = strings.TrimSpace(getenv("LAMBDA_TASK_ROOT"))
	if c.BundleDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return Config{}, fmt.Errorf("the function's directory (for ca_bundle): %w", err)
		}
		c.BundleDir = filepath.Dir(exe)
	}
	return c, nil
}

// parseServers reads MASTER_ALLOWED_SERVERS: comma-separated host:port.
func parseServers(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		host, port, err := net.SplitHostPort(item)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("MASTER_ALLOWED_SERVERS: %q is not host:port (e.g. db.example.com:5432)", item)
		}
		out = append(out, serverKey(host, n))
	}
	return out, nil
}

// parseUsers reads MASTER_ALLOWED_USERS: comma-separated names or prefixes.
func parseUsers(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if item == "*" || strings.ContainsAny(item, " \t") || strings.Contains(strings.TrimSuffix(item, "*"), "*") {
			return nil, fmt.Errorf("MASTER_ALLOWED_USERS: %q is neither a user name nor a prefix ending in \"*\" (leave the setting empty to allow every user)", item)
		}
		out = append(out, item)
	}
	return out, nil
}

// serverKey is how servers are compared: host names in lower case, since
// DNS names are case-insensitive.
func serverKey(host string, port int) string {
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))
}

// masterMayUse reports whether MASTER_ALLOWED_SERVERS names host:port.
func (c Config) masterMayUse(host string, port int) bool {
	return slices.Contains(c.MasterAllowedServers, serverKey(host, port))
}

// masterMaySet reports whether MASTER_ALLOWED_USERS (empty: any) lets the
// master user set the password of base's pair of users.
func (c Config) masterMaySet(base string) bool {
	if len(c.MasterAllowedUsers) == 0 {
		return true
	}
	for _, u := range c.MasterAllowedUsers {
		if p, ok := strings.CutSuffix(u, "*"); ok && strings.HasPrefix(base, p) || u == base {
			return true
		}
	}
	return false
}

// DefaultConfig is the configuration of an empty environment.
func DefaultConfig() Config {
	c, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		panic(errors.New("dbtarget: default configuration invalid: " + err.Error()))
	}
	return c
}

// Describe returns the configuration as log attributes.
func (c Config) Describe() []slog.Attr {
	return []slog.Attr{
		slog.Int("password_length", c.Password.Length),
		slog.Int("exclude_characters_count", len(c.Password.ExcludeCharacters)),
		slog.String("db_ca_bundle", c.CABundle),
		slog.Duration("db_connect_timeout", c.ConnectTimeout),
		slog.Any("master_allowed_servers", c.MasterAllowedServers),
		slog.Any("master_allowed_users", c.MasterAllowedUsers),
	}
}
