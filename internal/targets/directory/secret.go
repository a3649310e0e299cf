package directory

import (
	"errors"
	"fmt"
	"strings"

	"github.com/secrets-rotation/secrets-rotation/internal/secretjson"
)

// secret is one version of a directory secret:
//
//	{"username": "<the account's DN>", "password": "...",
//	 "masterarn": "<optional: the secret of a password administrator>",
//	 "strategy": "<optional: single or alternating>",
//	 "host": "<optional: must be DIRECTORY_URL's host>",
//	 "port": <optional: must be DIRECTORY_URL's port>,
//	 "security": "<optional: ldaps, starttls or plaintext>"}
//
// Other fields are kept as they are. It is untrusted input: the fields
// the function uses are type-checked, and host and port may only repeat
// what the configuration says.
type secret struct {
	Username, Password string
	MasterARN          string
	Strategy           string
	Host               string
	Port               int
	Security           string

	obj *secretjson.Object
}

// The values of "strategy".
const (
	strategySingle      = "single"
	strategyAlternating = "alternating"
)

// parseSecret reads a secret value. Its errors name the field, never a
// value.
func parseSecret(value string) (*secret, error) {
	obj, err := secretjson.Parse(value)
	if err != nil {
		return nil, err
	}
	s := &secret{obj: obj}
	if err := obj.Strings(map[string]*string{
		"username":  &s.Username,
		"password":  &s.Password,
		"masterarn": &s.MasterARN,
		"strategy":  &s.Strategy,
		"host":      &s.Host,
		"security":  &s.Security,
	}); err != nil {
		return nil, err
	}
	if err := obj.Port("port", &s.Port); err != nil {
		return nil, err
	}
	if obj.Has("ca_bundle") {
		return nil, errors.New(`secret field "ca_bundle" is not used by the directory function: the trusted CA is the function's DIRECTORY_CA_BUNDLE; remove the field`)
	}
	if strings.TrimSpace(s.Username) == "" {
		return nil, errors.New(`secret field "username" (the account's DN) is missing or empty`)
	}
	if !obj.Has("password") {
		return nil, errors.New(`secret field "password" is missing`)
	}
	switch s.Strategy {
	case "", strategySingle, strategyAlternating:
	default:
		return nil, fmt.Errorf(`secret field "strategy" is %q: want %q or %q (or leave it out: alternating with a "masterarn", single without)`, s.Strategy, strategySingle, strategyAlternating)
	}
	return s, nil
}

// with returns the secret's JSON with username and password replaced and
// every other field kept as it was.
func (s *secret) with(username, password string) (string, error) {
	return s.obj.With(map[string]string{"username": username, "password": password})
}
