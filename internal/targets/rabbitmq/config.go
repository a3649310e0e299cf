package rabbitmq

import "github.com/secrets-rotation/secrets-rotation/internal/account"

// DefaultExcludeCharacters are left out of generated passwords unless
// EXCLUDE_CHARACTERS says otherwise: the characters an amqps:// URI needs
// escaped (clients get that wrong), and the ",", ":" and "=" that Amazon MQ
// refuses in the passwords of the users it manages.
const DefaultExcludeCharacters = "/@\"'\\ :?#[]%`,="

// Config is the configuration of the RabbitMQ target (account.Config).
type Config = account.Config

// envNames are the function's names for the account layer's settings.
var envNames = account.EnvNames{
	CABundle:          "RABBITMQ_CA_BUNDLE",
	ConnectTimeout:    "RABBITMQ_CONNECT_TIMEOUT",
	ExcludeCharacters: DefaultExcludeCharacters,
}

// ConfigFromEnv reads and validates the configuration through getenv; its
// errors name the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	return account.ConfigFromEnv(getenv, envNames)
}

// DefaultConfig is the configuration of an empty environment.
func DefaultConfig() Config { return account.DefaultConfig(envNames) }

// New returns the target that rotates RabbitMQ users: the account layer
// over Driver. sm reads master secrets and, for the crash fallback, other
// versions.
func New(cfg Config, drv Driver, sm account.SecretsAPI) *account.Target {
	return account.New(cfg, drv, sm)
}
