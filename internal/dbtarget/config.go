// Package dbtarget is the rotation target of the database functions: the
// single-user and alternating-users strategies, written once over a Driver
// that each engine (PostgreSQL, MySQL/MariaDB) implements.
//
// It is configured from the environment of the Lambda function:
//
//	Variable             Default            Meaning
//	PASSWORD_LENGTH      32                 length of generated passwords
//	EXCLUDE_CHARACTERS   /@"'\ :?#[]%`      characters never used (plus the space,
//	                                        which INCLUDE_SPACE leaves out anyway):
//	                                        they break DSNs and connection strings
//	EXCLUDE_* / INCLUDE_SPACE / REQUIRE_EACH_INCLUDED_TYPE   as for the generic function
//	DB_CA_BUNDLE         (none)             PEM file trusted besides the system roots
//	DB_CONNECT_TIMEOUT   5s                 timeout of one database connection attempt
package dbtarget

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/password"
)

// DefaultExcludeCharacters are left out of generated passwords unless
// EXCLUDE_CHARACTERS says otherwise: each of them needs quoting in a URL, a
// DSN or a libpq/ODBC connection string, where clients get it wrong.
const DefaultExcludeCharacters = "/@\"'\\ :?#[]%`"

const defaultConnectTimeout = 5 * time.Second

// Config is the configuration of a Target.
type Config struct {
	Password       password.Policy
	CABundle       string
	ConnectTimeout time.Duration
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
	return c, nil
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
	}
}
