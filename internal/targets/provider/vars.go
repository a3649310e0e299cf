package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// The template variables. They are the whole vocabulary of a
// configuration: none is read from a secret's other fields, so the content
// of a secret can never add a header, change a path beyond its own key id,
// or name a host.
//
//	token          the rotation's token (the pending version's id)
//	secret_name    the secret's name
//	secret_hash    12 hex digits of SHA-256 of the secret's ARN: marks a key as this secret's
//	name           the key's name (key.name rendered), for lists and provider metadata
//	issued_at      when createSecret made the key (RFC 3339, UTC)
//	key            the new key (create when the function generates it; activate, test)
//	key_id         the new key's id (create when key.id is set; activate, test),
//	               or the id of the key being revoked (revoke)
//	current.key    the key of AWSCURRENT (requests with "auth": "current")
//	current.id     its id
//	admin.<field>  a field of the admin secret (requests with "auth": "admin")
//	config.<name>  a constant of the configuration's "constants"
type vars map[string]value

type value struct {
	s string
	// secret values are never logged, never put in a URL and are
	// redacted from provider error bodies.
	secret bool
}

func (vs vars) set(name, s string, secret bool) { vs[name] = value{s: s, secret: secret} }

func (vs vars) with(extra vars) vars {
	out := make(vars, len(vs)+len(extra))
	for k, v := range vs {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// secrets returns the secret values, for redaction.
func (vs vars) secrets() []string {
	var out []string
	for _, v := range vs {
		if v.secret && v.s != "" {
			out = append(out, v.s)
		}
	}
	return out
}

// The roles of the requests of a configuration.
const (
	roleCreate   = "create"
	roleActivate = "activate"
	roleTest     = "test"
	roleRevoke   = "revoke"
	roleList     = "list"
)

// The ways a request authenticates to the provider.
const (
	authAdmin   = "admin"   // a credential held in the admin secret, which the configuration names
	authCurrent = "current" // the key of AWSCURRENT
	authPending = "pending" // the new key (test, activate)
	authNone    = "none"
)

// authsOf lists the authentications each request may use; the first is
// the default.
var authsOf = map[string][]string{
	roleCreate:   {authAdmin, authCurrent},
	roleActivate: {authAdmin, authCurrent, authPending, authNone},
	roleTest:     {authPending},
	roleRevoke:   {authAdmin, authCurrent},
	roleList:     {authAdmin, authCurrent},
}

// tokenPattern is what a rotation token may look like: Secrets Manager's
// client request tokens are 32 to 64 characters, UUIDs in practice.
const tokenPattern = `[A-Za-z0-9_-]{32,64}`

var tokenRE = regexp.MustCompile(`^` + tokenPattern + `$`)

// allowed returns the variables a request of role may use with auth.
func (c *Config) allowed(role, auth string) map[string]bool {
	a := map[string]bool{"secret_name": true, "secret_hash": true}
	for k := range c.Constants {
		a["config."+k] = true
	}
	if role != roleRevoke {
		a["token"] = true
		if c.keyName != nil {
			a["name"] = true
		}
	}
	switch role {
	case roleCreate:
		a["issued_at"] = true
		if c.generate != nil {
			a["key"] = true
		}
		if c.keyID != nil {
			a["key_id"] = true
		}
	case roleActivate, roleTest:
		a["key"], a["key_id"], a["issued_at"] = true, true, true
	case roleRevoke:
		a["key_id"] = true
	}
	switch auth {
	case authAdmin:
		for _, f := range c.AdminFields {
			a["admin."+f] = true
		}
	case authCurrent:
		a["current.key"], a["current.id"] = true, true
	}
	return a
}

// secretVar reports whether the variable holds a credential.
func secretVar(name string) bool {
	return name == "key" || name == "current.key" || strings.HasPrefix(name, "admin.")
}

// checkVars refuses a template that uses a variable outside allowed.
func checkVars(t template, allowed map[string]bool) error {
	for _, n := range t.names() {
		if !allowed[n] {
			known := make([]string, 0, len(allowed))
			for k := range allowed {
				known = append(known, "{{"+k+"}}")
			}
			sort.Strings(known)
			return fmt.Errorf("unknown template variable {{%s}} here (allowed: %s)", n, strings.Join(known, " "))
		}
	}
	return nil
}

// secretHash marks keys as a secret's: the first 12 hex digits of the
// SHA-256 of its ARN (an ARN ends in random characters, so a secret made
// again under the same name gets another mark).
func secretHash(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	return hex.EncodeToString(sum[:6])
}

// Escapers: how a value is written where it lands.

// escPath escapes a value for one path segment: "/" and everything else
// that would change the path is percent-encoded, and dot segments, which a
// server would resolve into another path, are refused.
func escPath(v string) (string, error) {
	if v == "" || v == "." || v == ".." {
		return "", fmt.Errorf("value %q cannot be a path segment", v)
	}
	if err := noControl(v); err != nil {
		return "", err
	}
	return url.PathEscape(v), nil
}

func escQuery(v string) (string, error) {
	if err := noControl(v); err != nil {
		return "", err
	}
	return url.QueryEscape(v), nil
}

// escHeader refuses what would end the header or start another.
func escHeader(v string) (string, error) {
	if err := noControl(v); err != nil {
		return "", err
	}
	return v, nil
}

func noControl(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("value contains control characters")
	}
	return nil
}

func containsAny(names []string, set ...string) bool {
	for _, n := range names {
		if slices.Contains(set, n) {
			return true
		}
	}
	return false
}
