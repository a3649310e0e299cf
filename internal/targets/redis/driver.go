package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// DefaultExcludeCharacters are left out of generated passwords unless
// EXCLUDE_CHARACTERS says otherwise: each needs escaping in a redis:// URL
// (redis://user:password@host:port), where clients get it wrong.
const DefaultExcludeCharacters = "/@\"'\\ :?#[]%`"

// Config is the configuration of the Redis target (account.Config), read
// from the function's environment:
//
//	Variable                 Default          Meaning
//	PASSWORD_LENGTH          32               length of generated passwords
//	EXCLUDE_CHARACTERS       /@"'\ :?#[]%`    characters never used (they break redis:// URLs)
//	EXCLUDE_* / INCLUDE_SPACE / REQUIRE_EACH_INCLUDED_TYPE   as for the generic function
//	REDIS_CA_BUNDLE          (none)           PEM file trusted besides the system roots
//	REDIS_CONNECT_TIMEOUT    5s               timeout of one login, never beyond the
//	                                          invocation's deadline
//	REDIS_PLAINTEXT_SERVERS  (none)           host:port list: the only servers where a secret
//	                                          may turn TLS off ("ssl": false); there the
//	                                          master secret's credentials go unencrypted too
//	MASTER_ALLOWED_SERVERS   (none)           host:port list: where a master secret that names
//	                                          no host may be used
//	MASTER_ALLOWED_USERS     (none: any)      user names, or prefixes ending in "*", whose
//	                                          passwords the master user may change
type Config = account.Config

var envNames = account.EnvNames{
	CABundle:          "REDIS_CA_BUNDLE",
	ConnectTimeout:    "REDIS_CONNECT_TIMEOUT",
	PlaintextServers:  "REDIS_PLAINTEXT_SERVERS",
	ExcludeCharacters: DefaultExcludeCharacters,
}

// ConfigFromEnv reads and validates the configuration through getenv; its
// errors name the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	return account.ConfigFromEnv(getenv, envNames)
}

// DefaultConfig is the configuration of an empty environment.
func DefaultConfig() Config {
	return account.DefaultConfig(envNames)
}

// New returns the target of the redis function: the account layer over
// the Redis driver. sm reads master secrets and the versions a setSecret
// may fall back on.
func New(cfg Config, sm account.SecretsAPI) *account.Target {
	return account.New(cfg, Driver{}, sm)
}

// Driver is the Redis and Valkey driver of the account layer. ACL users
// hold several passwords at once, so a single user rotates by adding the
// new password beside the old one (setSecret) and removing those older
// than AWSPREVIOUS (finishSecret); both take an admin user's ACL SETUSER,
// so every secret names a master secret. Alternating users are supported
// as well: the clone copies the original's ACL rules.
type Driver struct {
	// hook, when set, sees every command of every session, logins
	// included: the crash tests kill the function after each one.
	hook goredis.Hook
}

var _ account.Driver = Driver{}

// Name implements account.Driver.
func (Driver) Name() string { return "redis" }

// Capabilities implements account.Driver: an ACL user keeps several
// passwords; changing any (even one's own) takes ACL SETUSER, an admin's
// command, so a user never changes its own.
func (Driver) Capabilities() account.Capabilities {
	return account.Capabilities{SeveralPasswords: true}
}

// Parse implements account.Driver.
func (Driver) Parse(req account.ParseRequest) (account.Account, error) {
	s, err := ParseSecret(req.Value, req.Master)
	if err != nil {
		return account.Account{}, err
	}
	a := account.Account{Username: s.Username, Password: s.Password, Server: s.Address(), Strategy: account.SingleUser, Value: s}
	if !req.Master {
		a.MasterARN, a.Strategy = s.MasterARN, s.Strategy
	}
	return a, nil
}

// Twins implements account.Driver: <user> and <user>_clone. Redis sets no
// length limit on user names.
func (Driver) Twins(req account.TwinsRequest) (account.Twins, error) {
	base := strings.TrimSuffix(req.Username, CloneSuffix)
	if base == "" {
		return account.Twins{}, fmt.Errorf("user name %q (field \"username\") is only the clone suffix: there is no user it is the clone of", req.Username)
	}
	return account.Twins{Base: base, Clone: base + CloneSuffix}, nil
}

// Locate implements account.Driver: the secret's host and port (Redis has
// no discovery), or req.At's for a master secret of credentials only.
func (Driver) Locate(_ context.Context, req account.LocateRequest) (account.Location, error) {
	s, ok := req.Account.Value.(*Secret)
	if !ok {
		return account.Location{}, errors.New("redis: an account not parsed by this driver")
	}
	loc := account.Location{Host: s.Host, Port: s.Port, Plaintext: !s.SSL, CABundle: s.CABundle}
	if req.At != nil {
		loc.Host, loc.Port = req.At.Host, req.At.Port
	}
	return loc, nil
}

// Connect implements account.Driver: AUTH user password (one attempt, so a
// refused login is one entry in the server's ACL LOG) over exactly req.TLS.
func (d Driver) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	ep := dbsecret.Endpoint{Host: req.Location.Host, Port: req.Location.Port, TLS: req.TLS, Timeout: req.Timeout}
	c, err := connect(ctx, ep, req.Username, req.Password, d.hook)
	if err != nil {
		return nil, err
	}
	return session{c}, nil
}

// NewValue implements account.Driver.
func (Driver) NewValue(req account.NewValueRequest) (string, error) {
	s, ok := req.Account.Value.(*Secret)
	if !ok {
		return "", errors.New("redis: an account not parsed by this driver")
	}
	return s.With(req.Username, req.Password)
}

// session adapts a Conn to account.Session.
type session struct{ c *Conn }

func (s session) Probe(ctx context.Context) error { return s.c.Probe(ctx) }
func (s session) Close() error                    { return s.c.Close() }

// SetOwnPassword: not announced (Capabilities): ACL SETUSER is an admin's
// command, whoever it changes.
func (session) SetOwnPassword(context.Context, account.SetOwnPasswordRequest) error {
	return errors.ErrUnsupported
}

func (s session) SetPassword(ctx context.Context, req account.SetPasswordRequest) error {
	return s.c.SetPassword(ctx, req.Username, req.Password)
}

func (s session) EnsureClone(ctx context.Context, req account.EnsureCloneRequest) error {
	return s.c.EnsureClone(ctx, req.Original, req.Clone, req.Password)
}

func (s session) AddPassword(ctx context.Context, req account.AddPasswordRequest) error {
	return s.c.AddPassword(ctx, req.Username, req.Password)
}

// RemovePasswords removes, in one ACL SETUSER, every password of the user
// but those of req.Keep. It refuses, changing nothing, when the user holds
// none of req.Keep: the server's own state then says that the secret holds
// no password of this user, so the master user touches nothing (a secret
// that names another user gains nothing from finishSecret).
func (s session) RemovePasswords(ctx context.Context, req account.RemovePasswordsRequest) error {
	_, err := s.c.RemovePasswordsExcept(ctx, req.Username, req.Keep...)
	return err
}
