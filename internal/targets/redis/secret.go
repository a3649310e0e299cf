package redis

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/secretjson"
)

// DefaultPort is the port of a secret that names none.
const DefaultPort = 6379

// CloneSuffix names the second user of the alternating strategy, as the
// database functions do.
const CloneSuffix = "_clone"

// The values of the secret's "strategy" field.
const (
	strategySingle      = string(account.SingleUser)       // "single-user", the default
	strategyAlternating = string(account.AlternatingUsers) // "alternating-users"
)

// Secret is one version of a Redis secret:
//
//	{"engine": "redis", "host": "cache.internal", "port": 6379,
//	 "username": "app", "password": "…", "masterarn": "arn:…",
//	 "ssl": true, "ca_bundle": "cache-ca.pem", "strategy": "single-user"}
//
// "engine" ("redis" or "valkey") is optional; "port" defaults to 6379,
// "ssl" to true and "strategy" to "single-user". A master secret holds
// "username" and "password", and may name "host", "port", "ssl" and
// "ca_bundle". Fields the function does not know are kept by With.
type Secret struct {
	Host      string
	Port      int
	Username  string
	Password  string
	MasterARN string
	// SSL is true unless the secret says "ssl": false.
	SSL bool
	// CABundle is the bare name of a PEM file shipped with the function.
	CABundle string
	Strategy account.Strategy

	obj *secretjson.Object
}

// Address is host:port, the host in lower case: how two versions compare.
func (s *Secret) Address() string {
	if s.Host == "" {
		return ""
	}
	return strings.ToLower(s.Host) + ":" + strconv.Itoa(s.Port)
}

// ParseSecret reads a secret value; master says it is a master secret.
// The value is untrusted input: every field the function uses is checked,
// and errors name the field and never a value.
func ParseSecret(value string, master bool) (*Secret, error) {
	obj, err := secretjson.Parse(value)
	if err != nil {
		return nil, err
	}
	s := &Secret{obj: obj, Port: DefaultPort, SSL: true, Strategy: account.SingleUser}
	var engine, strategy string
	if err := obj.Strings(map[string]*string{
		"engine":    &engine,
		"host":      &s.Host,
		"username":  &s.Username,
		"password":  &s.Password,
		"masterarn": &s.MasterARN,
		"ca_bundle": &s.CABundle,
		"strategy":  &strategy,
	}); err != nil {
		return nil, err
	}
	if err := obj.Port("port", &s.Port); err != nil {
		return nil, err
	}
	if err := obj.Bool("ssl", &s.SSL); err != nil {
		return nil, err
	}
	if err := checkUsername(s.Username); err != nil {
		return nil, err
	}
	if !obj.Has("password") {
		return nil, errors.New(`secret field "password" is missing`)
	}
	if s.CABundle != "" && !account.BareFileName(s.CABundle) {
		return nil, errors.New(`secret field "ca_bundle" must be the bare name of a PEM file shipped with the function (no "/", "\" or ".."): a secret may not name any other file`)
	}
	if s.Host = strings.TrimSpace(s.Host); s.Host != "" {
		if strings.ContainsAny(s.Host, "/ \t@") {
			return nil, errors.New(`secret field "host" must be a host name or an IP address`)
		}
		if managedEndpoint(s.Host) {
			return nil, fmt.Errorf(`secret field "host": %s is an ElastiCache or MemoryDB endpoint, whose clusters refuse ACL commands: their users are changed through the ElastiCache/MemoryDB ModifyUser API, which this function does not call (docs/redis.md)`, s.Host)
		}
	}
	if master {
		return s, nil
	}
	switch e := strings.ToLower(strings.TrimSpace(engine)); e {
	case "", "redis", "valkey":
	default:
		return nil, fmt.Errorf(`secret field "engine" is %q: the redis function serves "redis" and "valkey"`, e)
	}
	if obj.Has("user_arn") {
		return nil, errors.New(`secret field "user_arn" names an ElastiCache or MemoryDB user, which is changed through the ModifyUser API, not by ACL commands: this function does not rotate it (docs/redis.md)`)
	}
	if s.Host == "" {
		return nil, errors.New(`secret field "host" is missing`)
	}
	if s.MasterARN == "" {
		return nil, errors.New(`secret field "masterarn" is missing: a Redis ACL user's passwords are changed with ACL SETUSER, which needs an admin user; name the master secret that holds one`)
	}
	switch strategy {
	case "", strategySingle:
	case strategyAlternating:
		s.Strategy = account.AlternatingUsers
	default:
		return nil, fmt.Errorf(`secret field "strategy" is %q: want %q (the default) or %q`, strategy, strategySingle, strategyAlternating)
	}
	return s, nil
}

// checkUsername refuses what Redis cannot hold as a user name (it refuses
// spaces and NUL) and what would make a log line or an error ambiguous.
func checkUsername(u string) error {
	if u == "" {
		return errors.New(`secret field "username" is missing or empty`)
	}
	if strings.IndexFunc(u, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New(`secret field "username" contains a space or a control character, which Redis user names cannot hold`)
	}
	return nil
}

// managedEndpoint reports whether host is an ElastiCache or MemoryDB
// endpoint (…cache.amazonaws.com, …memorydb.<region>.amazonaws.com, and
// their .com.cn forms).
func managedEndpoint(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	h = strings.TrimSuffix(h, ".cn")
	if !strings.HasSuffix(h, ".amazonaws.com") {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, ".amazonaws.com"), ".")
	for _, l := range labels {
		if l == "cache" || l == "memorydb" {
			return true
		}
	}
	return false
}

// With returns the secret's JSON with username and password replaced and
// every other field kept as it was.
func (s *Secret) With(username, password string) (string, error) {
	return s.obj.With(map[string]string{"username": username, "password": password})
}
