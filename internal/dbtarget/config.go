package dbtarget

import "github.com/secrets-rotation/secrets-rotation/internal/account"

// DefaultExcludeCharacters are left out of generated passwords unless
// EXCLUDE_CHARACTERS says otherwise: each of them needs quoting in a URL, a
// DSN or a libpq/ODBC connection string, where clients get it wrong.
const DefaultExcludeCharacters = "/@\"'\\ :?#[]%`"

// Config is the configuration of a database target (account.Config).
type Config = account.Config

// envNames are the database functions' names for the account layer's
// settings.
var envNames = account.EnvNames{
	CABundle:          "DB_CA_BUNDLE",
	ConnectTimeout:    "DB_CONNECT_TIMEOUT",
	ExcludeCharacters: DefaultExcludeCharacters,
}

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	return account.ConfigFromEnv(getenv, envNames)
}

// DefaultConfig is the configuration of an empty environment.
func DefaultConfig() Config {
	return account.DefaultConfig(envNames)
}
