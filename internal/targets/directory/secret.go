package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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

	raw map[string]json.RawMessage
}

// The values of "strategy".
const (
	strategySingle      = "single"
	strategyAlternating = "alternating"
)

// parseSecret reads a secret value. Its errors name the field, never a
// value.
func parseSecret(value string) (*secret, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errors.New("secret value is not a JSON object")
	}
	s := &secret{raw: raw}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"username", &s.Username},
		{"password", &s.Password},
		{"masterarn", &s.MasterARN},
		{"strategy", &s.Strategy},
		{"host", &s.Host},
		{"security", &s.Security},
	} {
		v, ok := raw[f.name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return nil, fmt.Errorf("secret field %q must be a string", f.name)
		}
	}
	if v, ok := raw["port"]; ok && string(v) != "null" {
		text := string(v)
		if len(text) > 0 && text[0] == '"' {
			if err := json.Unmarshal(v, &text); err != nil {
				return nil, errors.New(`secret field "port" must be a number`)
			}
		}
		p, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil || p < 1 || p > 65535 {
			return nil, errors.New(`secret field "port" must be a number between 1 and 65535`)
		}
		s.Port = p
	}
	if _, ok := raw["ca_bundle"]; ok {
		return nil, errors.New(`secret field "ca_bundle" is not used by the directory function: the trusted CA is the function's DIRECTORY_CA_BUNDLE; remove the field`)
	}
	if strings.TrimSpace(s.Username) == "" {
		return nil, errors.New(`secret field "username" (the account's DN) is missing or empty`)
	}
	if _, ok := raw["password"]; !ok {
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
	out := make(map[string]json.RawMessage, len(s.raw)+2)
	for k, v := range s.raw {
		out[k] = v
	}
	for k, v := range map[string]string{"username": username, "password": password} {
		b, err := marshal(v)
		if err != nil {
			return "", err
		}
		out[k] = b
	}
	b, err := marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode secret: %w", err)
	}
	return string(b), nil
}

// marshal encodes v without escaping <, > and & (a password keeps its
// characters as they are).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
