package account

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

// DefaultConnectTimeout bounds one login when the function sets no timeout.
const DefaultConnectTimeout = 5 * time.Second

// Config is the configuration of a Target. Everything in it comes from the
// function's own settings, which the function trusts; nothing comes from a
// secret.
type Config struct {
	Password password.Policy
	// CABundle is a PEM file trusted besides the system roots.
	CABundle string
	// ConnectTimeout bounds one login; the invocation's deadline bounds it
	// further.
	ConnectTimeout time.Duration
	// MasterAllowedServers are the servers ("host:port", host in lower
	// case) where a master secret that names no server of its own, and
	// whose server no MasterLocator finds, may be used: the rotated
	// secret's server must be one of them (MASTER_ALLOWED_SERVERS).
	MasterAllowedServers []string
	// MasterAllowedUsers, when not empty, are the users whose passwords the
	// master user may set: exact names, or prefixes that end in "*"
	// (MASTER_ALLOWED_USERS). The alternating strategy matches its base
	// user; the clone follows.
	MasterAllowedUsers []string
	// PlaintextServers ("host:port", host in lower case) are, for a family
	// that names EnvNames.PlaintextServers, the only servers where a
	// secret's wish for plaintext ("ssl": false) is honoured; there it
	// holds for master credentials too. See Target.tlsFor.
	PlaintextServers []string
	// BundleDir is the function's own directory, where a secret's CA file
	// (a bare file name) is looked up: $LAMBDA_TASK_ROOT, or the directory
	// of the executable.
	BundleDir string

	names EnvNames
}

// EnvNames are the names of a function family's own variables.
type EnvNames struct {
	// CABundle and ConnectTimeout name the variables of Config.CABundle
	// and Config.ConnectTimeout (the databases: DB_CA_BUNDLE,
	// DB_CONNECT_TIMEOUT).
	CABundle, ConnectTimeout string
	// ExcludeCharacters is EXCLUDE_CHARACTERS' default: characters that
	// break the system's connection strings.
	ExcludeCharacters string
	// PlaintextServers, when set, names the variable that lists the
	// servers (host:port) where a secret may turn TLS off: elsewhere its
	// wish is refused, and there master credentials may go unencrypted as
	// well (a system whose every secret needs a master: Redis). Empty, the
	// families keep the databases' rule: a user's own logins follow the
	// secret, master credentials always go over TLS.
	PlaintextServers string
}

// ConfigFromEnv reads and validates the configuration through getenv: the
// password policy (PASSWORD_LENGTH, EXCLUDE_*, ...), MASTER_ALLOWED_SERVERS,
// MASTER_ALLOWED_USERS, LAMBDA_TASK_ROOT, and the variables names gives.
// Its errors name the variable.
func ConfigFromEnv(getenv func(string) string, names EnvNames) (Config, error) {
	c := Config{names: names}
	p, err := password.PolicyFromEnv(func(k string) string {
		if v := getenv(k); k == "EXCLUDE_CHARACTERS" && v == "" {
			return names.ExcludeCharacters
		}
		return getenv(k)
	})
	if err != nil {
		return Config{}, err
	}
	c.Password = p
	if names.CABundle != "" {
		c.CABundle = strings.TrimSpace(getenv(names.CABundle))
		if c.CABundle != "" {
			if _, err := os.Stat(c.CABundle); err != nil {
				return Config{}, fmt.Errorf("%s: %w", names.CABundle, err)
			}
		}
	}
	c.ConnectTimeout = DefaultConnectTimeout
	if names.ConnectTimeout != "" {
		if s := strings.TrimSpace(getenv(names.ConnectTimeout)); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("%s=%q is not a positive Go duration such as 5s", names.ConnectTimeout, s)
			}
			c.ConnectTimeout = d
		}
	}
	if c.MasterAllowedServers, err = parseServers("MASTER_ALLOWED_SERVERS", getenv("MASTER_ALLOWED_SERVERS")); err != nil {
		return Config{}, err
	}
	if c.MasterAllowedUsers, err = parseUsers(getenv("MASTER_ALLOWED_USERS")); err != nil {
		return Config{}, err
	}
	if names.PlaintextServers != "" {
		if c.PlaintextServers, err = parseServers(names.PlaintextServers, getenv(names.PlaintextServers)); err != nil {
			return Config{}, err
		}
	}
	c.BundleDir = strings.TrimSpace(getenv("LAMBDA_TASK_ROOT"))
	if c.BundleDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return Config{}, fmt.Errorf("the function's directory (for CA files): %w", err)
		}
		c.BundleDir = filepath.Dir(exe)
	}
	return c, nil
}

// DefaultConfig is the configuration of an empty environment.
func DefaultConfig(names EnvNames) Config {
	c, err := ConfigFromEnv(func(string) string { return "" }, names)
	if err != nil {
		panic(errors.New("account: default configuration invalid: " + err.Error()))
	}
	return c
}

// parseServers reads a list of servers (MASTER_ALLOWED_SERVERS, say):
// comma-separated host:port.
func parseServers(name, s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		host, port, err := net.SplitHostPort(item)
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%s: %q is not host:port (e.g. db.example.com:5432)", name, item)
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

// masterMayUse reports whether MASTER_ALLOWED_SERVERS lists loc.
func (c Config) masterMayUse(loc Location) bool {
	return slices.Contains(c.MasterAllowedServers, loc.Address())
}

// plaintextAllowed reports whether the configuration lets a secret turn
// TLS off at loc: always for a family without a PlaintextServers variable
// (master credentials are refused elsewhere), else only at the servers it
// lists.
func (c Config) plaintextAllowed(loc Location) bool {
	return c.names.PlaintextServers == "" || slices.Contains(c.PlaintextServers, loc.Address())
}

// masterMaySet reports whether MASTER_ALLOWED_USERS (empty: any) lets the
// master user set the password of user (the base user of a pair).
func (c Config) masterMaySet(user string) bool {
	if len(c.MasterAllowedUsers) == 0 {
		return true
	}
	for _, u := range c.MasterAllowedUsers {
		if p, ok := strings.CutSuffix(u, "*"); ok && strings.HasPrefix(user, p) || u == user {
			return true
		}
	}
	return false
}

// Describe returns the configuration as log attributes.
func (c Config) Describe() []slog.Attr {
	name := func(n, def string) string {
		if n == "" {
			return def
		}
		return strings.ToLower(n)
	}
	attrs := []slog.Attr{
		slog.Int("password_length", c.Password.Length),
		slog.Int("exclude_characters_count", len(c.Password.ExcludeCharacters)),
		slog.String(name(c.names.CABundle, "ca_bundle"), c.CABundle),
		slog.Duration(name(c.names.ConnectTimeout, "connect_timeout"), c.ConnectTimeout),
		slog.Any("master_allowed_servers", c.MasterAllowedServers),
		slog.Any("master_allowed_users", c.MasterAllowedUsers),
	}
	if c.names.PlaintextServers != "" {
		attrs = append(attrs, slog.Any(strings.ToLower(c.names.PlaintextServers), c.PlaintextServers))
	}
	return attrs
}
