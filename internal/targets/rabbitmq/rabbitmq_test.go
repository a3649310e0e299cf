package rabbitmq_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func TestPasswordHashShape(t *testing.T) {
	const pw = "correct horse battery staple ✓"
	h1, err := rabbitmq.PasswordHash(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := rabbitmq.PasswordHash(pw)
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	raw, err := base64.StdEncoding.DecodeString(h1)
	if err != nil || len(raw) != 4+sha256.Size {
		t.Fatalf("hash is not base64 of 4 salt bytes and a SHA-256 digest: %d bytes, %v", len(raw), err)
	}
	want := sha256.Sum256(append(append([]byte{}, raw[:4]...), []byte(pw)...))
	if string(raw[4:]) != string(want[:]) {
		t.Error("digest is not SHA-256(salt ‖ UTF-8 password)")
	}
}

// The broker hashed the admin password itself (default_user): HasPassword
// must agree with the broker's own hashing.
func TestHasPasswordMatchesTheBrokersHashing(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	if ok, err := admin.HasPassword(ctx, s.AdminUser, s.AdminPassword); err != nil || !ok {
		t.Fatalf("HasPassword(admin, its password) = %v, %v; want true", ok, err)
	}
	if ok, err := admin.HasPassword(ctx, s.AdminUser, s.AdminPassword+"x"); err != nil || ok {
		t.Fatalf("HasPassword(admin, another password) = %v, %v; want false", ok, err)
	}
	if _, err := admin.HasPassword(ctx, rabbitmqtest.Name("nobody_"), "x"); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Fatalf("HasPassword of a missing user: %v, want ErrNoUser", err)
	}
}

func TestConnectClassifiesFailures(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	ctx := context.Background()
	monitor, pw := rabbitmqtest.Name("monitor_"), rabbitmqtest.Password()
	s.CreateUser(t, monitor, pw, "monitoring")
	ep := s.Endpoint(t)

	a, err := rabbitmq.Connect(ctx, ep, s.AdminUser, s.AdminPassword)
	if err != nil {
		t.Fatalf("administrator: %v", err)
	}
	a.Close()

	unknownCA, err := dbsecret.TLSConfig(true, s.Host)
	if err != nil {
		t.Fatal(err)
	}
	withTLS := func(cfg rabbitmq.Endpoint, mod func(*rabbitmq.Endpoint)) rabbitmq.Endpoint { mod(&cfg); return cfg }
	cases := []struct {
		name     string
		ep       rabbitmq.Endpoint
		user, pw string
		want     error
	}{
		{"wrong password", ep, s.AdminUser, "wrong-" + s.AdminPassword, dbsecret.ErrCannotLogIn},
		{"unknown user", ep, rabbitmqtest.Name("nobody_"), pw, dbsecret.ErrCannotLogIn},
		{"not an administrator", ep, monitor, pw, rabbitmq.ErrNotAdministrator},
		{"nothing listens", withTLS(ep, func(e *rabbitmq.Endpoint) { e.APIPort = testbed.FreeLoopbackPort(t) }), s.AdminUser, s.AdminPassword, dbsecret.ErrCannotReach},
		{"certificate from an unknown CA", withTLS(ep, func(e *rabbitmq.Endpoint) { e.TLS = unknownCA }), s.AdminUser, s.AdminPassword, dbsecret.ErrCannotReach},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rabbitmq.Connect(ctx, tc.ep, tc.user, tc.pw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
	plain := ep
	plain.TLS = nil
	if _, err := rabbitmq.Connect(ctx, plain, s.AdminUser, s.AdminPassword); err == nil || !strings.Contains(err.Error(), "plain HTTP") {
		t.Errorf("Connect without TLS: %v, want a refusal to send the password over plain HTTP", err)
	}
}

func TestProbeClassifiesFailures(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	ctx := context.Background()
	user, pw := rabbitmqtest.Name("app_"), rabbitmqtest.Password()
	s.CreateUser(t, user, pw)
	noVHost := rabbitmqtest.Name("novhost_")
	s.CreateUser(t, noVHost, pw)
	s.API(t, http.MethodDelete, []string{"api", "permissions", "/", noVHost}, nil)
	ep := s.Endpoint(t)

	before := s.FailedLogins(t)
	if err := rabbitmq.Probe(ctx, ep, user, pw); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if n := s.FailedLogins(t) - before; n != 0 {
		t.Fatalf("a good login counted as %d failed by the broker", n)
	}

	unknownCA, err := dbsecret.TLSConfig(true, s.Host)
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := dbsecret.TLSConfig(true, "mq.example.com", s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(mod func(*rabbitmq.Endpoint)) rabbitmq.Endpoint { e := ep; mod(&e); return e }
	cases := []struct {
		name       string
		ep         rabbitmq.Endpoint
		user, pw   string
		want       error
		authFailed int64 // the broker's count of failed authentications
	}{
		{"wrong password", ep, user, "wrong-" + pw, dbsecret.ErrCannotLogIn, 1},
		{"unknown user", ep, rabbitmqtest.Name("nobody_"), pw, dbsecret.ErrCannotLogIn, 1},
		{"no access to the vhost", ep, noVHost, pw, dbsecret.ErrCannotLogIn, 0},
		{"vhost that does not exist", mod(func(e *rabbitmq.Endpoint) { e.VHost = rabbitmqtest.Name("vh_") }), user, pw, dbsecret.ErrCannotLogIn, 0},
		{"nothing listens", mod(func(e *rabbitmq.Endpoint) { e.AMQPPort = testbed.FreeLoopbackPort(t) }), user, pw, dbsecret.ErrCannotReach, 0},
		{"certificate from an unknown CA", mod(func(e *rabbitmq.Endpoint) { e.TLS = unknownCA }), user, pw, dbsecret.ErrCannotReach, 0},
		{"certificate for another name", mod(func(e *rabbitmq.Endpoint) { e.TLS = wrongName }), user, pw, dbsecret.ErrCannotReach, 0},
		{"plaintext to the TLS listener", mod(func(e *rabbitmq.Endpoint) { e.TLS = nil; e.Timeout = 3 * time.Second }), user, pw, dbsecret.ErrCannotReach, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.FailedLogins(t)
			err := rabbitmq.Probe(ctx, tc.ep, tc.user, tc.pw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
			var ce *dbsecret.ConnError
			if !errors.As(err, &ce) || ce.User != tc.user {
				t.Errorf("error %v is not a *dbsecret.ConnError naming %s", err, tc.user)
			}
			if strings.Contains(err.Error(), tc.pw) {
				t.Errorf("error %q contains the password", err)
			}
			if n := s.FailedLogins(t) - before; n != tc.authFailed {
				t.Errorf("the broker counts %d failed authentications, want %d", n, tc.authFailed)
			}
		})
	}
}

func logsIn(t *testing.T, s *rabbitmqtest.Server, user, pw string) bool {
	t.Helper()
	err := rabbitmq.Probe(context.Background(), s.Endpoint(t), user, pw)
	if err != nil && !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("probe %s: %v", user, err)
	}
	return err == nil
}

func TestSetPasswordKeepsTagsAndPermissions(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	user, p1, p2 := rabbitmqtest.Name("app_"), rabbitmqtest.Password(), rabbitmqtest.Password()
	s.CreateUser(t, user, p1, "monitoring", "billing")
	if err := admin.SetPassword(ctx, user, p2); err != nil {
		t.Fatal(err)
	}
	if logsIn(t, s, user, p1) || !logsIn(t, s, user, p2) {
		t.Fatal("after SetPassword only the new password must log in")
	}
	u, err := admin.User(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(u.Tags)); !slices.Equal(got, []string{"billing", "monitoring"}) {
		t.Errorf("tags after SetPassword: %v, want billing, monitoring", got)
	}
	perms, err := admin.Permissions(ctx, user)
	if err != nil || len(perms) != 1 || perms[0].VHost != "/" {
		t.Errorf("permissions after SetPassword: %v, %v", perms, err)
	}
	for pw, want := range map[string]bool{p1: false, p2: true} {
		if ok, err := admin.HasPassword(ctx, user, pw); err != nil || ok != want {
			t.Errorf("HasPassword = %v, %v; want %v", ok, err, want)
		}
	}

	missing := rabbitmqtest.Name("missing_")
	if err := admin.SetPassword(ctx, missing, p2); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Fatalf("SetPassword of a missing user: %v, want ErrNoUser", err)
	}
	if _, err := admin.User(ctx, missing); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Fatalf("SetPassword created the missing user %s: %v", missing, err)
	}
}

// rights is everything EnsureClone copies, for comparing two users.
type rights struct {
	Tags   []string
	Limits map[string]int64
	Perms  []rabbitmq.Permission
	Topics []rabbitmq.TopicPermission
}

func rightsOf(t *testing.T, admin *rabbitmq.Admin, user string) rights {
	t.Helper()
	ctx := context.Background()
	u, err := admin.User(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	perms, err := admin.Permissions(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	topics, err := admin.TopicPermissions(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	return rights{Tags: slices.Sorted(slices.Values(u.Tags)), Limits: u.Limits, Perms: perms, Topics: topics}
}

func sameRights(a, b rights) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestEnsureClone(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	orig := rabbitmqtest.Name("app_")
	clone := orig + "_clone"
	p0, p1, p2 := rabbitmqtest.Password(), rabbitmqtest.Password(), rabbitmqtest.Password()
	vh := rabbitmqtest.Name("vh_")
	s.CreateVHost(t, vh)
	s.CreateUser(t, orig, p0, "monitoring")
	t.Cleanup(func() { s.DeleteUser(t, clone) })
	s.API(t, http.MethodPut, []string{"api", "permissions", vh, orig}, map[string]string{"configure": "^$", "write": "^out\\.", "read": "^in\\."})
	s.API(t, http.MethodPut, []string{"api", "topic-permissions", "/", orig}, map[string]string{"exchange": "amq.topic", "write": "^a\\.", "read": ".*"})
	s.API(t, http.MethodPut, []string{"api", "topic-permissions", "/", orig}, map[string]string{"exchange": "events", "write": "^e\\.", "read": "^e\\."})
	s.API(t, http.MethodPut, []string{"api", "topic-permissions", vh, orig}, map[string]string{"exchange": "amq.topic", "write": ".*", "read": ".*"})
	s.API(t, http.MethodPut, []string{"api", "user-limits", orig, "max-connections"}, map[string]int64{"value": 50})

	check := func(pw string) {
		t.Helper()
		o, c := rightsOf(t, admin, orig), rightsOf(t, admin, clone)
		if !sameRights(o, c) {
			t.Fatalf("clone's rights\n%+v\ndiffer from the original's\n%+v", c, o)
		}
		if len(o.Perms) != 2 || len(o.Topics) != 3 || o.Limits["max-connections"] != 50 {
			t.Fatalf("the original's rights are not what the test set: %+v", o)
		}
		// A refused AMQP login takes the broker 3 s: the server's state
		// answers for the original's password.
		if has, err := admin.HasPassword(ctx, clone, p0); err != nil || has || !logsIn(t, s, clone, pw) {
			t.Fatal("the clone must log in with its own password only")
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

	// The original changed, and the clone was given rights by hand (or by
	// a crash halfway): the clone follows the original, nothing more.
	s.API(t, http.MethodDelete, []string{"api", "permissions", vh, orig}, nil)
	s.API(t, http.MethodDelete, []string{"api", "topic-permissions", "/", orig}, nil)
	s.API(t, http.MethodPut, []string{"api", "topic-permissions", "/", orig}, map[string]string{"exchange": "events", "write": "^x\\.", "read": "^x\\."})
	s.API(t, http.MethodDelete, []string{"api", "user-limits", orig, "max-connections"}, nil)
	s.API(t, http.MethodPut, []string{"api", "user-limits", clone, "max-channels"}, map[string]int64{"value": 3})
	if err := admin.EnsureClone(ctx, orig, clone, p2); err != nil {
		t.Fatal(err)
	}
	o, c := rightsOf(t, admin, orig), rightsOf(t, admin, clone)
	if !sameRights(o, c) {
		t.Fatalf("after the original changed, the clone's rights\n%+v\ndiffer from the original's\n%+v", c, o)
	}
	if len(c.Perms) != 1 || len(c.Topics) != 2 || len(c.Limits) != 0 {
		t.Fatalf("the clone kept rights the original no longer has: %+v", c)
	}
	if logsIn(t, s, clone, p1) || !logsIn(t, s, clone, p2) || !logsIn(t, s, orig, p0) {
		t.Fatal("after EnsureClone with a new password only that one logs in as the clone, and the original is unchanged")
	}

	if err := admin.EnsureClone(ctx, orig, orig, p2); err == nil {
		t.Error("EnsureClone onto the original itself did not refuse")
	}
	missing := rabbitmqtest.Name("missing_")
	if err := admin.EnsureClone(ctx, missing, missing+"_clone", p2); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Errorf("EnsureClone of a missing user: %v, want ErrNoUser", err)
	}
	if _, err := admin.User(ctx, missing+"_clone"); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Errorf("EnsureClone of a missing user created its clone: %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	admin := s.Admin(t)
	ctx := context.Background()
	user := rabbitmqtest.Name("gone_")
	s.CreateUser(t, user, rabbitmqtest.Password())
	if err := admin.DeleteUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.User(ctx, user); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Fatalf("user still there after DeleteUser: %v", err)
	}
	if err := admin.DeleteUser(ctx, user); err != nil {
		t.Fatalf("second DeleteUser: %v", err)
	}
	if err := admin.DeleteUser(ctx, s.AdminUser); err == nil {
		t.Fatal("DeleteUser of the logged-in administrator did not refuse")
	}
}
