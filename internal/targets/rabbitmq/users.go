package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// User is what the management API reports of a user, its password hash
// excepted (it stays inside this package).
type User struct {
	Name string
	Tags []string
	// Limits are the user's limits (max-connections, max-channels).
	Limits map[string]int64

	hash, algorithm string
}

// Permission is a user's permission on one virtual host.
type Permission struct {
	VHost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// TopicPermission is a user's topic permission on one exchange of a
// virtual host.
type TopicPermission struct {
	VHost    string `json:"vhost"`
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// User returns the named user, or an error wrapping ErrNoUser.
func (a *Admin) User(ctx context.Context, name string) (*User, error) {
	var raw struct {
		Name             string           `json:"name"`
		PasswordHash     string           `json:"password_hash"`
		HashingAlgorithm string           `json:"hashing_algorithm"`
		Tags             json.RawMessage  `json:"tags"`
		Limits           map[string]int64 `json:"limits"`
	}
	err := a.do(ctx, http.MethodGet, path("api", "users", name), nil, &raw)
	if isNotFound(err) {
		return nil, fmt.Errorf("user %s: %w", name, ErrNoUser)
	}
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", name, err)
	}
	tags, err := parseTags(raw.Tags)
	if err != nil {
		return nil, fmt.Errorf("read user %s: %w", name, err)
	}
	if raw.Limits == nil {
		// Brokers before 3.10 do not report limits with the user.
		if raw.Limits, err = a.limits(ctx, name); err != nil {
			return nil, err
		}
	}
	return &User{Name: raw.Name, Tags: tags, Limits: raw.Limits, hash: raw.PasswordHash, algorithm: raw.HashingAlgorithm}, nil
}

func (a *Admin) limits(ctx context.Context, name string) (map[string]int64, error) {
	var list []struct {
		Value map[string]int64 `json:"value"`
	}
	if err := a.do(ctx, http.MethodGet, path("api", "user-limits", name), nil, &list); err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("read limits of user %s: %w", name, err)
	}
	m := map[string]int64{}
	for _, l := range list {
		maps.Copy(m, l.Value)
	}
	return m, nil
}

// Permissions returns the user's virtual host permissions.
func (a *Admin) Permissions(ctx context.Context, user string) ([]Permission, error) {
	var perms []Permission
	if err := a.do(ctx, http.MethodGet, path("api", "users", user, "permissions"), nil, &perms); err != nil {
		return nil, fmt.Errorf("read permissions of %s: %w", user, err)
	}
	slices.SortFunc(perms, func(x, y Permission) int { return strings.Compare(x.VHost, y.VHost) })
	return perms, nil
}

// TopicPermissions returns the user's topic permissions.
func (a *Admin) TopicPermissions(ctx context.Context, user string) ([]TopicPermission, error) {
	var perms []TopicPermission
	if err := a.do(ctx, http.MethodGet, path("api", "users", user, "topic-permissions"), nil, &perms); err != nil {
		return nil, fmt.Errorf("read topic permissions of %s: %w", user, err)
	}
	slices.SortFunc(perms, func(x, y TopicPermission) int {
		if c := strings.Compare(x.VHost, y.VHost); c != 0 {
			return c
		}
		return strings.Compare(x.Exchange, y.Exchange)
	})
	return perms, nil
}

// HasPassword reports whether password is the user's password, by checking
// it against the stored hash: asking leaves no failed login in the broker's
// log or counters.
func (a *Admin) HasPassword(ctx context.Context, user, password string) (bool, error) {
	u, err := a.User(ctx, user)
	if err != nil {
		return false, err
	}
	ok, err := passwordMatches(u.algorithm, u.hash, password)
	if err != nil {
		return false, fmt.Errorf("user %s: %w", user, err)
	}
	return ok, nil
}

// putUser creates or replaces a user. The management API replaces the
// whole user record, so tags must always be given.
func (a *Admin) putUser(ctx context.Context, name, hash string, tags []string) error {
	body := map[string]any{"tags": strings.Join(tags, ","), "password_hash": hash, "hashing_algorithm": HashingAlgorithm}
	if err := a.do(ctx, http.MethodPut, path("api", "users", name), body, nil, hash); err != nil {
		return fmt.Errorf("put user %s: %w", name, err)
	}
	return nil
}

// SetPassword replaces the password of an existing user, keeping its tags
// (its permissions and limits are not part of the user record and stay).
// The old password stops working at once.
func (a *Admin) SetPassword(ctx context.Context, user, password string) error {
	u, err := a.User(ctx, user)
	if err != nil {
		return err
	}
	hash, err := PasswordHash(password)
	if err != nil {
		return err
	}
	return a.putUser(ctx, user, hash, u.Tags)
}

// EnsureClone makes clone a user with the tags, limits, virtual host
// permissions and topic permissions of original, and password as its
// password. A missing clone is first created with a password nobody knows,
// and its password comes last, so a clone that logs in is complete; rights the
// clone has and the original lacks are removed. Running it again converges
// on the same state.
func (a *Admin) EnsureClone(ctx context.Context, original, clone, password string) error {
	if original == clone {
		return fmt.Errorf("clone of %s: the clone must have another name", original)
	}
	o, err := a.User(ctx, original)
	if err != nil {
		return fmt.Errorf("clone of %s: %w", original, err)
	}
	hash, err := PasswordHash(password)
	if err != nil {
		return err
	}
	c, err := a.User(ctx, clone)
	switch {
	case isNoUser(err):
		// A user created without a password gets the hash of the empty
		// one; a random password that nobody keeps is safer.
		placeholder, err := randomPasswordHash()
		if err != nil {
			return err
		}
		if err := a.putUser(ctx, clone, placeholder, nil); err != nil {
			return err
		}
		c = &User{Name: clone}
	case err != nil:
		return err
	}
	if err := a.syncPermissions(ctx, original, clone); err != nil {
		return err
	}
	if err := a.syncTopicPermissions(ctx, original, clone); err != nil {
		return err
	}
	if err := a.syncLimits(ctx, o, c); err != nil {
		return err
	}
	return a.putUser(ctx, clone, hash, o.Tags)
}

func (a *Admin) syncPermissions(ctx context.Context, original, clone string) error {
	want, err := a.Permissions(ctx, original)
	if err != nil {
		return err
	}
	have, err := a.Permissions(ctx, clone)
	if err != nil {
		return err
	}
	for _, p := range want {
		if slices.Contains(have, p) {
			continue
		}
		body := map[string]string{"configure": p.Configure, "write": p.Write, "read": p.Read}
		if err := a.do(ctx, http.MethodPut, path("api", "permissions", p.VHost, clone), body, nil); err != nil {
			return fmt.Errorf("copy permissions of %s on vhost %s to %s: %w", original, p.VHost, clone, err)
		}
	}
	for _, p := range have {
		if slices.ContainsFunc(want, func(w Permission) bool { return w.VHost == p.VHost }) {
			continue
		}
		if err := a.do(ctx, http.MethodDelete, path("api", "permissions", p.VHost, clone), nil, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove permissions of %s on vhost %s, which %s lacks: %w", clone, p.VHost, original, err)
		}
	}
	return nil
}

// syncTopicPermissions works per virtual host: the API deletes a user's
// topic permissions of a whole virtual host at once.
func (a *Admin) syncTopicPermissions(ctx context.Context, original, clone string) error {
	want, err := a.TopicPermissions(ctx, original)
	if err != nil {
		return err
	}
	have, err := a.TopicPermissions(ctx, clone)
	if err != nil {
		return err
	}
	byVHost := func(ps []TopicPermission) map[string][]TopicPermission {
		m := map[string][]TopicPermission{}
		for _, p := range ps {
			m[p.VHost] = append(m[p.VHost], p)
		}
		return m
	}
	w, h := byVHost(want), byVHost(have)
	for _, vhost := range slices.Sorted(maps.Keys(h)) {
		if slices.Equal(w[vhost], h[vhost]) {
			continue
		}
		if err := a.do(ctx, http.MethodDelete, path("api", "topic-permissions", vhost, clone), nil, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove topic permissions of %s on vhost %s: %w", clone, vhost, err)
		}
	}
	for _, vhost := range slices.Sorted(maps.Keys(w)) {
		if slices.Equal(w[vhost], h[vhost]) {
			continue
		}
		for _, p := range w[vhost] {
			body := map[string]string{"exchange": p.Exchange, "write": p.Write, "read": p.Read}
			if err := a.do(ctx, http.MethodPut, path("api", "topic-permissions", vhost, clone), body, nil); err != nil {
				return fmt.Errorf("copy topic permissions of %s on vhost %s exchange %s to %s: %w", original, vhost, p.Exchange, clone, err)
			}
		}
	}
	return nil
}

func (a *Admin) syncLimits(ctx context.Context, o, c *User) error {
	for _, name := range slices.Sorted(maps.Keys(o.Limits)) {
		v := o.Limits[name]
		if cv, ok := c.Limits[name]; ok && cv == v {
			continue
		}
		if err := a.do(ctx, http.MethodPut, path("api", "user-limits", c.Name, name), map[string]int64{"value": v}, nil); err != nil {
			return fmt.Errorf("copy limit %s of %s to %s: %w", name, o.Name, c.Name, err)
		}
	}
	for name := range c.Limits {
		if _, ok := o.Limits[name]; ok {
			continue
		}
		if err := a.do(ctx, http.MethodDelete, path("api", "user-limits", c.Name, name), nil, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove limit %s of %s, which %s lacks: %w", name, c.Name, o.Name, err)
		}
	}
	return nil
}

// DeleteUser deletes a user and its permissions; deleting a user that does
// not exist succeeds, so a rerun converges. It refuses to delete the user
// it is logged in as.
func (a *Admin) DeleteUser(ctx context.Context, user string) error {
	if user == a.user {
		return fmt.Errorf("delete user %s: refusing to delete the administrator this session logs in as", user)
	}
	if err := a.do(ctx, http.MethodDelete, path("api", "users", user), nil, nil); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete user %s: %w", user, err)
	}
	return nil
}

// AuthAttempts are a node's authentication counters for one protocol
// (RabbitMQ 3.8.10+, GET /api/auth/attempts/<node>).
type AuthAttempts struct {
	Protocol  string `json:"protocol"`
	Attempts  int64  `json:"auth_attempts"`
	Failed    int64  `json:"auth_attempts_failed"`
	Succeeded int64  `json:"auth_attempts_succeeded"`
}

// AuthAttempts reads the authentication counters of the node that serves
// the API, by protocol ("amqp091", "http", ...): the broker's own count of
// refused logins.
func (a *Admin) AuthAttempts(ctx context.Context) (map[string]AuthAttempts, error) {
	var overview struct {
		Node string `json:"node"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/overview", nil, &overview); err != nil {
		return nil, err
	}
	var list []AuthAttempts
	if err := a.do(ctx, http.MethodGet, path("api", "auth", "attempts", overview.Node), nil, &list); err != nil {
		return nil, err
	}
	m := make(map[string]AuthAttempts, len(list))
	for _, at := range list {
		m[at.Protocol] = at
	}
	return m, nil
}

func isNoUser(err error) bool { return errors.Is(err, ErrNoUser) }
