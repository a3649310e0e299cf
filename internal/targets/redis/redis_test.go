package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func TestPasswordHash(t *testing.T) {
	// The SHA-256 of "password", as `echo -n password | sha256sum` prints it.
	const want = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
	if got := redis.PasswordHash("password"); got != want {
		t.Fatalf("PasswordHash(password) = %s, want %s", got, want)
	}
}

func TestConnectClassifiesFailures(t *testing.T) {
	s := redistest.Settings(t)
	ctx := context.Background()
	user, pw := redistest.Name("conn_"), redistest.Password()
	s.CreateUser(t, user, pw, "on", "~*", "+@all")
	off := redistest.Name("off_")
	s.CreateUser(t, off, pw, "off", "+@all")

	ep := s.Endpoint(t)
	c, err := redis.Connect(ctx, ep, user, pw)
	if err != nil {
		t.Fatalf("connect with the right password: %v", err)
	}
	if err := c.Probe(ctx); err != nil {
		t.Errorf("probe: %v", err)
	}
	c.Close()
	if err := redis.Probe(ctx, s.PlainEndpoint(), user, pw); err != nil {
		t.Errorf("plaintext listener, right password: %v", err)
	}

	systemRootsOnly, err := dbsecret.TLSConfig(true, s.Host)
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := dbsecret.TLSConfig(true, "cache.example.com", s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		ep       dbsecret.Endpoint
		user, pw string
		want     error
	}{
		{"wrong password", ep, user, "wrong-" + pw, dbsecret.ErrCannotLogIn},
		{"unknown user", ep, redistest.Name("nobody_"), pw, dbsecret.ErrCannotLogIn},
		{"disabled user", ep, off, pw, dbsecret.ErrCannotLogIn},
		{"nothing listens", dbsecret.Endpoint{Host: "127.0.0.1", Port: testbed.FreeLoopbackPort(t), TLS: ep.TLS, Timeout: 2 * time.Second}, user, pw, dbsecret.ErrCannotReach},
		{"certificate from an unknown CA", dbsecret.Endpoint{Host: s.Host, Port: s.TLSPort, TLS: systemRootsOnly, Timeout: 2 * time.Second}, user, pw, dbsecret.ErrCannotReach},
		{"certificate for another name", dbsecret.Endpoint{Host: s.Host, Port: s.TLSPort, TLS: wrongName, Timeout: 2 * time.Second}, user, pw, dbsecret.ErrCannotReach},
		{"plaintext to the TLS listener", dbsecret.Endpoint{Host: s.Host, Port: s.TLSPort, Timeout: 2 * time.Second}, user, pw, dbsecret.ErrCannotReach},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.AuthFailures(t, tc.user)
			err := redis.Probe(ctx, tc.ep, tc.user, tc.pw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
			var ce *dbsecret.ConnError
			if !errors.As(err, &ce) || ce.User != tc.user {
				t.Errorf("error %v is not a *dbsecret.ConnError naming user %s", err, tc.user)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error %q contains the password", err)
			}
			// One refused login is one refusal on the server too (no
			// HELLO-then-AUTH retry), and an unreachable server sees none.
			wantFailures := int64(0)
			if tc.want == dbsecret.ErrCannotLogIn {
				wantFailures = 1
			}
			if got := s.AuthFailures(t, tc.user) - before; got != wantFailures {
				t.Errorf("the server's ACL LOG counts %d refused logins of %s, want %d", got, tc.user, wantFailures)
			}
		})
	}
}

func TestProbeAcceptsUserWithoutPing(t *testing.T) {
	s := redistest.Settings(t)
	user, pw := redistest.Name("noping_"), redistest.Password()
	s.CreateUser(t, user, pw, "on", "~app:*", "-@all", "+get")
	if err := redis.Probe(context.Background(), s.Endpoint(t), user, pw); err != nil {
		t.Fatalf("a user allowed only GET logs in, yet Probe says: %v", err)
	}
	if err := redis.Probe(context.Background(), s.Endpoint(t), user, "x"+pw); !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("wrong password of a user allowed only GET: %v, want ErrCannotLogIn", err)
	}
}

// logsIn reports whether user logs in with pw, failing the test on any
// error other than a refused login.
func logsIn(t *testing.T, s *redistest.Server, user, pw string) bool {
	t.Helper()
	err := redis.Probe(context.Background(), s.Endpoint(t), user, pw)
	if err != nil && !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("probe %s: %v", user, err)
	}
	return err == nil
}

func passwordCount(t *testing.T, admin *redis.Conn, user string) int {
	t.Helper()
	u, err := admin.User(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordCount()
}

func TestAddAndRemovePasswords(t *testing.T) {
	s := redistest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	user, p1, p2, p3 := redistest.Name("multi_"), redistest.Password(), redistest.Password(), redistest.Password()
	s.CreateUser(t, user, p1, "on", "~*", "+@all")

	if err := admin.AddPassword(ctx, user, p2); err != nil {
		t.Fatal(err)
	}
	if err := admin.AddPassword(ctx, user, p2); err != nil {
		t.Fatalf("adding the same password again: %v", err)
	}
	if n := passwordCount(t, admin, user); n != 2 {
		t.Fatalf("%d passwords after adding one to one (twice), want 2", n)
	}
	if !logsIn(t, s, user, p1) || !logsIn(t, s, user, p2) {
		t.Fatal("after AddPassword both the old and the new password must log in")
	}
	for pw, want := range map[string]bool{p1: true, p2: true, p3: false} {
		if has, err := admin.HasPassword(ctx, user, pw); err != nil || has != want {
			t.Errorf("HasPassword = %v, %v; want %v", has, err, want)
		}
	}

	// Keeping only a password the user does not have is refused, changing nothing.
	if _, err := admin.RemovePasswordsExcept(ctx, user, p3); err == nil {
		t.Fatal("RemovePasswordsExcept kept none of the user's passwords and did not refuse")
	}
	if n := passwordCount(t, admin, user); n != 2 {
		t.Fatalf("a refused RemovePasswordsExcept changed the passwords: %d left", n)
	}

	removed, err := admin.RemovePasswordsExcept(ctx, user, p2, p3)
	if err != nil || removed != 1 {
		t.Fatalf("RemovePasswordsExcept = %d, %v; want 1 removed", removed, err)
	}
	if logsIn(t, s, user, p1) || !logsIn(t, s, user, p2) {
		t.Fatal("after removing all but the new password, only the new one must log in")
	}
	if removed, err := admin.RemovePasswordsExcept(ctx, user, p2); err != nil || removed != 0 {
		t.Fatalf("second RemovePasswordsExcept = %d, %v; want 0 removed, no error", removed, err)
	}
}

func TestSetPasswordReplacesAll(t *testing.T) {
	s := redistest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	user, p1, p2, p3 := redistest.Name("reset_"), redistest.Password(), redistest.Password(), redistest.Password()
	s.CreateUser(t, user, p1, "on", "~*", "+@all")
	if err := admin.AddPassword(ctx, user, p2); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetPassword(ctx, user, p3); err != nil {
		t.Fatal(err)
	}
	if logsIn(t, s, user, p1) || logsIn(t, s, user, p2) || !logsIn(t, s, user, p3) {
		t.Fatal("after SetPassword only the new password must log in")
	}
	if n := passwordCount(t, admin, user); n != 1 {
		t.Fatalf("%d passwords after SetPassword, want 1", n)
	}
}

func TestMissingAndPasswordlessUsersAreRefused(t *testing.T) {
	s := redistest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	missing := redistest.Name("missing_")
	ops := map[string]func(user string) error{
		"AddPassword": func(u string) error { return admin.AddPassword(ctx, u, redistest.Password()) },
		"SetPassword": func(u string) error { return admin.SetPassword(ctx, u, redistest.Password()) },
		"RemovePasswordsExcept": func(u string) error {
			_, err := admin.RemovePasswordsExcept(ctx, u, redistest.Password())
			return err
		},
	}
	for name, op := range ops {
		if err := op(missing); !errors.Is(err, redis.ErrNoUser) {
			t.Errorf("%s on a missing user: %v, want ErrNoUser", name, err)
		}
	}
	// ACL SETUSER would have created it: nothing did.
	if _, err := admin.User(ctx, missing); !errors.Is(err, redis.ErrNoUser) {
		t.Fatalf("user %s exists after operations refused it: %v", missing, err)
	}

	nopass := redistest.Name("nopass_")
	if err := s.Client(t).Do(ctx, "ACL", "SETUSER", nopass, "on", "nopass", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.DeleteUser(t, nopass) })
	for name, op := range ops {
		if err := op(nopass); err == nil || !strings.Contains(err.Error(), "nopass") {
			t.Errorf("%s on a nopass user: %v, want a refusal naming nopass", name, err)
		}
	}
	if err := admin.EnsureClone(ctx, nopass, nopass+"_clone", redistest.Password()); err == nil {
		t.Error("EnsureClone of a nopass user did not refuse")
	}
	if err := admin.EnsureClone(ctx, missing, missing+"_clone", redistest.Password()); !errors.Is(err, redis.ErrNoUser) {
		t.Errorf("EnsureClone of a missing user: %v, want ErrNoUser", err)
	}
	if u, err := admin.User(ctx, nopass); err != nil || u.PasswordCount() != 0 {
		t.Errorf("the nopass user was changed: %v", err)
	}
}

// dryRun asks the server whether user may run the command.
func dryRun(t *testing.T, s *redistest.Server, user string, cmd ...any) bool {
	t.Helper()
	args := append([]any{"ACL", "DRYRUN", user}, cmd...)
	res, err := s.Client(t).Do(context.Background(), args...).Result()
	if err != nil {
		t.Fatalf("ACL DRYRUN %s %v: %v", user, cmd, err)
	}
	return res == "OK"
}

func TestEnsureClone(t *testing.T) {
	s := redistest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	orig := redistest.Name("app_")
	clone := orig + "_clone"
	p0, p1, p2 := redistest.Password(), redistest.Password(), redistest.Password()
	s.CreateUser(t, orig, p0, "on", "skip-sanitize-payload", "~app:*", "%R~ro:*", "&chan:*",
		"-@all", "+get", "+set", "+@connection", "(~h:* +hget)")
	t.Cleanup(func() { s.DeleteUser(t, clone) })

	check := func(pw string) {
		t.Helper()
		o, err := admin.User(ctx, orig)
		if err != nil {
			t.Fatal(err)
		}
		c, err := admin.User(ctx, clone)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(o.Flags, " ") != strings.Join(c.Flags, " ") || o.Keys != c.Keys || o.Channels != c.Channels ||
			o.Commands != c.Commands || strings.Join(o.Selectors, "|") != strings.Join(c.Selectors, "|") {
			t.Fatalf("clone %+v differs from original %+v", c, o)
		}
		if c.PasswordCount() != 1 || !logsIn(t, s, clone, pw) || logsIn(t, s, clone, p0) {
			t.Fatal("the clone must log in with its own password only")
		}
		for _, tc := range []struct {
			cmd  []any
			want bool
		}{
			{[]any{"get", "app:1"}, true},
			{[]any{"set", "app:1", "v"}, true},
			{[]any{"get", "ro:1"}, true},
			{[]any{"set", "ro:1", "v"}, false},
			{[]any{"del", "app:1"}, false},
			{[]any{"hget", "h:1", "f"}, true},
			{[]any{"get", "other"}, false},
		} {
			if got := dryRun(t, s, clone, tc.cmd...); got != tc.want {
				t.Errorf("clone may run %v: %v, want %v", tc.cmd, got, tc.want)
			}
		}
	}

	if err := admin.EnsureClone(ctx, orig, clone, p1); err != nil {
		t.Fatal(err)
	}
	check(p1)
	if err := admin.EnsureClone(ctx, orig, clone, p1); err != nil {
		t.Fatalf("second EnsureClone: %v", err)
	}
	check(p1)

	// The original lost a right and gained another: the clone follows.
	if err := s.Client(t).Do(ctx, "ACL", "SETUSER", orig, "-set", "+del").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.EnsureClone(ctx, orig, clone, p2); err != nil {
		t.Fatal(err)
	}
	if dryRun(t, s, clone, "set", "app:1", "v") || !dryRun(t, s, clone, "del", "app:1") {
		t.Error("the clone did not follow the original's new rules")
	}
	if logsIn(t, s, clone, p1) || !logsIn(t, s, clone, p2) {
		t.Error("after EnsureClone with a new password only that one logs in")
	}
	if !logsIn(t, s, orig, p0) {
		t.Error("EnsureClone changed the original's password")
	}
	if err := admin.EnsureClone(ctx, orig, orig, p2); err == nil {
		t.Error("EnsureClone onto the original itself did not refuse")
	}
}
