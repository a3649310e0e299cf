package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ErrNoUser is wrapped by the error of an operation on a user the server
// does not have. No operation creates a user it was not asked to create:
// ACL SETUSER would create one silently.
var ErrNoUser = errors.New("no such ACL user")

// PasswordHash returns the hex SHA-256 of password: the form of the
// "#<hash>" (add) and "!<hash>" (remove) rules of ACL SETUSER, and of the
// hashes ACL GETUSER lists. The server never needs the plaintext.
func PasswordHash(password string) string {
	sum := sha256.Sum256([]byte(password))
	return hex.EncodeToString(sum[:])
}

// User is what ACL GETUSER reports of a user, password hashes excepted
// (they stay inside this package). Keys, Channels and Commands are the
// server's own rule strings ("~app:* %R~ro:*", "&chan", "-@all +get"); each
// selector is the rule string of one "(...)" selector.
type User struct {
	Flags     []string
	Keys      string
	Channels  string
	Commands  string
	Selectors []string
	passwords []string
}

// PasswordCount is the number of passwords the user has.
func (u *User) PasswordCount() int { return len(u.passwords) }

// rules returns the ACL SETUSER rules that give a user u's permissions,
// after a "reset" (which also turns the user off and removes its
// passwords). It refuses what it cannot copy faithfully.
func (u *User) rules() ([]string, error) {
	var rules []string
	for _, f := range u.Flags {
		switch f {
		case "on", "off", "sanitize-payload", "skip-sanitize-payload":
			rules = append(rules, f)
		case "nopass":
			return nil, errors.New(`the user has the "nopass" flag (any password logs in): there is no password to rotate`)
		default:
			return nil, fmt.Errorf("the user has the flag %q, which this function does not know how to copy", f)
		}
	}
	rules = append(rules, strings.Fields(u.Keys)...)
	// "reset" sets resetchannels; the original's channels follow.
	rules = append(rules, "resetchannels")
	rules = append(rules, strings.Fields(u.Channels)...)
	rules = append(rules, strings.Fields(u.Commands)...)
	for _, s := range u.Selectors {
		rules = append(rules, "("+s+")")
	}
	return rules, nil
}

// samePermissions reports whether u and o give the same rights.
func (u *User) samePermissions(o *User) bool {
	return slices.Equal(u.Flags, o.Flags) && u.Keys == o.Keys && u.Channels == o.Channels &&
		u.Commands == o.Commands && slices.Equal(u.Selectors, o.Selectors)
}

// User returns the ACL of the named user, or an error wrapping ErrNoUser.
func (c *Conn) User(ctx context.Context, name string) (*User, error) {
	res, err := c.conn.Do(ctx, "ACL", "GETUSER", name).Result()
	if errors.Is(err, goredis.Nil) || (err == nil && res == nil) {
		return nil, fmt.Errorf("user %s at %s: %w", name, c.ep, ErrNoUser)
	}
	if err != nil {
		return nil, fmt.Errorf("ACL GETUSER %s at %s: %w", name, c.ep, err)
	}
	u, err := parseUser(res)
	if err != nil {
		return nil, fmt.Errorf("ACL GETUSER %s at %s: %w", name, c.ep, err)
	}
	return u, nil
}

// parseUser reads the reply of ACL GETUSER: in RESP2 a flat list of field
// names and values (Redis 7 and Valkey 7/8 use these field names).
func parseUser(res any) (*User, error) {
	fields, err := pairs(res)
	if err != nil {
		return nil, err
	}
	u := &User{}
	for name, v := range fields {
		switch name {
		case "flags":
			u.Flags, err = stringList(v)
		case "passwords":
			u.passwords, err = stringList(v)
		case "keys":
			u.Keys, err = rule(v)
		case "channels":
			u.Channels, err = rule(v)
		case "commands":
			u.Commands, err = rule(v)
		case "selectors":
			u.Selectors, err = selectors(v)
		}
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
	}
	return u, nil
}

// pairs turns a RESP2 flat list of names and values (or a RESP3 map) into a map.
func pairs(res any) (map[string]any, error) {
	switch r := res.(type) {
	case map[any]any:
		m := make(map[string]any, len(r))
		for k, v := range r {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("unexpected field name %T", k)
			}
			m[ks] = v
		}
		return m, nil
	case []any:
		if len(r)%2 != 0 {
			return nil, fmt.Errorf("odd number of elements (%d) in a field list", len(r))
		}
		m := make(map[string]any, len(r)/2)
		for i := 0; i < len(r); i += 2 {
			ks, ok := r[i].(string)
			if !ok {
				return nil, fmt.Errorf("unexpected field name %T", r[i])
			}
			m[ks] = r[i+1]
		}
		return m, nil
	}
	return nil, fmt.Errorf("unexpected reply %T", res)
}

func stringList(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %T", v)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("want strings, got %T", e)
		}
		out = append(out, s)
	}
	return out, nil
}

// rule reads one rule string. Redis 6.x listed keys and channels as lists
// of patterns; they are joined into the rule string Redis 7 gives.
func rule(v any) (string, error) {
	switch r := v.(type) {
	case string:
		return r, nil
	case []any:
		s, err := stringList(r)
		return strings.Join(s, " "), err
	}
	return "", fmt.Errorf("want a string, got %T", v)
}

func selectors(v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %T", v)
	}
	var out []string
	for _, e := range list {
		f, err := pairs(e)
		if err != nil {
			return nil, err
		}
		var parts []string
		for _, name := range []string{"keys", "channels", "commands"} {
			r, err := rule(f[name])
			if err != nil && f[name] != nil {
				return nil, fmt.Errorf("selector %s: %w", name, err)
			}
			if name == "channels" {
				// A selector starts with no channels unless it lists some.
				parts = append(parts, "resetchannels")
			}
			if r != "" {
				parts = append(parts, r)
			}
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out, nil
}

// existing returns the user, refusing one whose passwords cannot be rotated.
func (c *Conn) existing(ctx context.Context, name string) (*User, error) {
	u, err := c.User(ctx, name)
	if err != nil {
		return nil, err
	}
	if slices.Contains(u.Flags, "nopass") {
		// Adding a password would clear nopass and lock out every client
		// that sends none.
		return nil, fmt.Errorf(`user %s at %s has the "nopass" flag (any password logs in): refusing to give it passwords`, name, c.ep)
	}
	return u, nil
}

// setUser runs ACL SETUSER. The server's error names the rule it refused
// ("Error in ACL SETUSER modifier '#…'"), so password rules are cut out of
// the error text: no hash ever reaches an error.
func (c *Conn) setUser(ctx context.Context, name string, rules ...string) error {
	args := make([]any, 0, len(rules)+3)
	args = append(args, "ACL", "SETUSER", name)
	for _, r := range rules {
		args = append(args, r)
	}
	if err := c.conn.Do(ctx, args...).Err(); err != nil {
		var rerr goredis.Error
		if errors.As(err, &rerr) {
			// The server's answer quotes the rule it refused: keep its
			// text, less the password rules, and not the error itself.
			return fmt.Errorf("ACL SETUSER %s at %s as %s: %s", name, c.ep, c.user, redactPasswordRules(err.Error(), rules))
		}
		// Anything else (network, time-out) never carries the command.
		return fmt.Errorf("ACL SETUSER %s at %s as %s: %w", name, c.ep, c.user, err)
	}
	return nil
}

// redactPasswordRules replaces in msg every password rule of rules
// (">password", "<password", "#hash", "!hash").
func redactPasswordRules(msg string, rules []string) string {
	for _, r := range rules {
		if len(r) > 1 && strings.ContainsRune("><#!", rune(r[0])) {
			msg = strings.ReplaceAll(msg, r, r[:1]+"[redacted]")
		}
	}
	return msg
}

// HasPassword reports whether password is one of the user's passwords. It
// reads the server's state instead of trying to log in, so that asking
// leaves no refused login in the server's ACL LOG.
func (c *Conn) HasPassword(ctx context.Context, user, password string) (bool, error) {
	u, err := c.User(ctx, user)
	if err != nil {
		return false, err
	}
	return slices.Contains(u.passwords, PasswordHash(password)), nil
}

// AddPassword adds password to the user's passwords; the others keep
// working. Adding one the user already has changes nothing. The user must
// exist.
func (c *Conn) AddPassword(ctx context.Context, user, password string) error {
	u, err := c.existing(ctx, user)
	if err != nil {
		return err
	}
	h := PasswordHash(password)
	if slices.Contains(u.passwords, h) {
		return nil // a retried setSecret: the server's state says it is done
	}
	return c.setUser(ctx, user, "#"+h)
}

// RemovePasswordsExcept removes every password of the user but those in
// keep, in one ACL SETUSER (atomic on the server), and returns how many it
// removed. It refuses, changing nothing, when none of keep is among the
// user's passwords: that would leave the user without a password that
// anyone holds. Run again, it removes nothing more.
func (c *Conn) RemovePasswordsExcept(ctx context.Context, user string, keep ...string) (int, error) {
	u, err := c.existing(ctx, user)
	if err != nil {
		return 0, err
	}
	kept := make([]string, 0, len(keep))
	for _, k := range keep {
		kept = append(kept, PasswordHash(k))
	}
	var rules []string
	held := false
	for _, h := range u.passwords {
		if slices.Contains(kept, h) {
			held = true
			continue
		}
		rules = append(rules, "!"+h)
	}
	if !held {
		return 0, fmt.Errorf("user %s at %s has none of the %d passwords to keep: refusing to remove its %d others", user, c.ep, len(keep), len(u.passwords))
	}
	if len(rules) == 0 {
		return 0, nil
	}
	return len(rules), c.setUser(ctx, user, rules...)
}

// SetPassword makes password the user's only password ("resetpass" and
// "#<hash>" in one ACL SETUSER): every other password stops working at
// once. The user must exist.
func (c *Conn) SetPassword(ctx context.Context, user, password string) error {
	if _, err := c.existing(ctx, user); err != nil {
		return err
	}
	return c.setUser(ctx, user, "resetpass", "#"+PasswordHash(password))
}

// EnsureClone makes clone a user with the permissions of original (its
// on/off and payload flags, key, channel and command rules and selectors,
// as ACL GETUSER reports them) and password as its only password, whether
// or not clone exists: one ACL SETUSER starting with "reset", so the clone
// is never seen half made and a second run changes nothing. It then reads
// the clone back and fails if its permissions differ from the original's.
func (c *Conn) EnsureClone(ctx context.Context, original, clone, password string) error {
	if original == clone {
		return fmt.Errorf("clone of %s: the clone must have another name", original)
	}
	o, err := c.User(ctx, original)
	if err != nil {
		return fmt.Errorf("clone of %s: %w", original, err)
	}
	rules, err := o.rules()
	if err != nil {
		return fmt.Errorf("clone of %s at %s: %w", original, c.ep, err)
	}
	rules = append([]string{"reset"}, rules...)
	rules = append(rules, "#"+PasswordHash(password))
	if err := c.setUser(ctx, clone, rules...); err != nil {
		return err
	}
	cl, err := c.User(ctx, clone)
	if err != nil {
		return err
	}
	if !cl.samePermissions(o) {
		return fmt.Errorf("clone %s of %s at %s: the server reports other permissions for the clone (%q %q %q) than for the original (%q %q %q)",
			clone, original, c.ep, cl.Keys, cl.Channels, cl.Commands, o.Keys, o.Channels, o.Commands)
	}
	return nil
}
