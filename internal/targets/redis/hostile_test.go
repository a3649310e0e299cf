package redis_test

// The hostile-input suite of the redis function: attacks that a writer of
// one secret (PutSecretValue on its own secret, nothing more) can try,
// played against the real Redis of scripts/redis.sh, with
// redistest.Thief as the attacker's own server. Each refusal must name the
// secret, the field and the reason, and leave every version, label and
// ACL user as it was.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// rotateOnce runs one rotation, stopping at the first failing step, and
// returns its token.
func rotateOnce(t testing.TB, h *dbtest.Harness, arn string) (string, error) {
	t.Helper()
	token := h.Open(arn)
	for _, step := range localrun.Steps {
		if err := h.Step(nil, step, arn, token); err != nil {
			return token, err
		}
	}
	return token, h.Em.CloseRotation(context.Background(), arn, token)
}

// refusal asserts that err is a refusal that names the secret, the field
// (or account) and the reason, and shows none of the secrets, nor their
// hashes.
func refusal(t testing.TB, err error, arn, field, reason string, secrets ...string) {
	t.Helper()
	dbtest.Refused(t, err, arn, field, reason, secrets...)
	for _, s := range secrets {
		if strings.Contains(err.Error(), redis.PasswordHash(s)) {
			t.Fatal("the refusal shows a password's hash")
		}
	}
}

// aclState is what the server holds for the users: their rules and
// password hashes, for comparing before and after.
func aclState(t testing.TB, s *redistest.Server, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		res, err := s.Client(t).Do(context.Background(), "ACL", "GETUSER", u).Result()
		fmt.Fprintf(&b, "%s=%v/%v;", u, res, err)
	}
	return b.String()
}

// TestHostileMasterSentToUserChosenHost: the master secret's credentials
// must not follow the user secret to a server the user secret chooses. The
// attacker runs that server (over TLS with a certificate the function
// trusts, or in plaintext) and accepts any password.
func TestHostileMasterSentToUserChosenHost(t *testing.T) {
	s := redistest.Settings(t)
	cases := []struct {
		name      string
		plaintext bool
		// master is the master secret's fields (the admin's credentials).
		master map[string]any
		// configure changes the function's configuration.
		configure   func(c *redis.Config, thief string)
		field, want string
	}{{
		name:   "credentials-only master secret, no server allowed",
		master: map[string]any{"host": nil, "port": nil, "engine": nil},
		field:  `"masterarn"`, want: "MASTER_ALLOWED_SERVERS does not list 127.0.0.1:",
	}, {
		name:   "master secret of the real server",
		master: nil,
		field:  `"masterarn"`, want: "refusing to use it",
	}, {
		name:   "credentials-only master secret, the real server allowed",
		master: map[string]any{"host": nil, "port": nil, "engine": nil},
		configure: func(c *redis.Config, _ string) {
			c.MasterAllowedServers = []string{fmt.Sprintf("%s:%d", s.Host, s.TLSPort)}
		},
		field: `"masterarn"`, want: "MASTER_ALLOWED_SERVERS does not list 127.0.0.1:",
	}, {
		// MASTER_ALLOWED_SERVERS lists the attacker's server by mistake:
		// the secrets' wish for plaintext is still refused there.
		name: "plaintext, allowed as a master's server but not for plaintext", plaintext: true,
		master: map[string]any{"host": nil, "port": nil, "engine": nil, "ssl": false},
		configure: func(c *redis.Config, thief string) {
			c.MasterAllowedServers = []string{thief}
			c.PlaintextServers = []string{fmt.Sprintf("%s:%d", s.Host, s.Port)}
		},
		field: `"ssl": false`, want: "REDIS_PLAINTEXT_SERVERS does not list",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			thief := s.Thief(t, c.plaintext)
			thiefAddr := fmt.Sprintf("%s:%d", thief.Host, thief.Port)
			cfg := config(t)
			if c.configure != nil {
				c.configure(&cfg, thiefAddr)
			}
			tgt, _ := newTarget(t, cfg, testbed.AWSConfig(t))
			h := dbtest.NewHarness(t, tgt)
			masterARN := masterSecret(t, h.Em, s, c.master)
			attackerPW := redistest.Password()
			extra := map[string]any{"host": thief.Host, "port": thief.Port, "masterarn": masterARN}
			if c.plaintext {
				extra["ssl"] = false
			}
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, "app", attackerPW, extra)))
			before := dbtest.Snapshot(t, h, arn)
			token, err := rotateOnce(t, h, arn)
			if thief.Saw(s.AdminPassword) || thief.Saw(s.AdminUser) {
				t.Fatal("the attacker's server saw the master user")
			}
			refusal(t, err, arn, c.field, c.want, s.AdminPassword, attackerPW)
			if !strings.HasPrefix(err.Error(), "setSecret ") || thief.Connections() != 0 {
				t.Fatalf("want a refusal before any connection, got %d connections and %v", thief.Connections(), err)
			}
			dbtest.Unchanged(t, h, arn, token, before)
			h.AssertNoSecretInLogs(s.AdminPassword)
		})
	}
}

// TestHostileThiefControl shows that the thief sees what reaches it: when
// the configuration itself lists the attacker's server in
// MASTER_ALLOWED_SERVERS (the function trusts its configuration), and the
// attacker holds a valid certificate for it, the master credentials do
// reach it. The refusals above are therefore the function's doing.
func TestHostileThiefControl(t *testing.T) {
	s := redistest.Settings(t)
	thief := s.Thief(t, false)
	cfg := config(t)
	cfg.MasterAllowedServers = []string{fmt.Sprintf("%s:%d", thief.Host, thief.Port)}
	tgt, _ := newTarget(t, cfg, testbed.AWSConfig(t))
	h := dbtest.NewHarness(t, tgt)
	masterARN := masterSecret(t, h.Em, s, map[string]any{"host": nil, "port": nil})
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, "app", redistest.Password(), map[string]any{"host": thief.Host, "port": thief.Port, "masterarn": masterARN})))
	_, _ = rotateOnce(t, h, arn)
	if !thief.Saw(s.AdminPassword) {
		t.Fatalf("the thief did not see the master credentials the configuration sent it (%d connections): it cannot be trusted", thief.Connections())
	}
}

// TestHostileSecretNamesAnotherUser: the secret's "username" must not
// choose whose password the master user changes. The victim is a user the
// attacker does not control.
func TestHostileSecretNamesAnotherUser(t *testing.T) {
	s := redistest.Settings(t)
	for _, c := range []struct {
		name     string
		strategy string
		// user returns the attacker's username and password.
		user        func(t *testing.T, victim string) (string, string)
		field, want string
	}{{
		name: "single user: the victim with a guessed password", strategy: "single-user",
		user:  func(_ *testing.T, victim string) (string, string) { return victim, redistest.Password() },
		field: "cannot log in as " + "%s", want: "with AWSCURRENT",
	}, {
		name: "alternating: the victim's clone name", strategy: "alternating-users",
		user: func(_ *testing.T, victim string) (string, string) {
			return victim + redis.CloneSuffix, redistest.Password()
		},
		field: `"username"`, want: "no version of the secret proves control of",
	}, {
		name: "alternating: an account of the attacker named like the victim's clone", strategy: "alternating-users",
		user: func(t *testing.T, victim string) (string, string) {
			pw := redistest.Password()
			s.CreateUser(t, victim+redis.CloneSuffix, pw, "on", "~mine:*", "+get")
			return victim + redis.CloneSuffix, pw
		},
		field: `"username"`, want: "no version of the secret proves control of",
	}, {
		name: "alternating: the victim without its password", strategy: "alternating-users",
		user:  func(_ *testing.T, victim string) (string, string) { return victim, redistest.Password() },
		field: `"password"`, want: "AWSCURRENT does not log in as",
	}} {
		t.Run(c.name, func(t *testing.T) {
			victim, vpw := appUser(t, s, "victim_")
			user, pw := c.user(t, victim)
			h, _ := harness(t)
			masterARN := masterSecret(t, h.Em, s, nil)
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "strategy": c.strategy})))
			acl := aclState(t, s, victim, victim+redis.CloneSuffix)
			before := dbtest.Snapshot(t, h, arn)
			token, err := rotateOnce(t, h, arn)
			field := c.field
			if strings.Contains(field, "%s") {
				field = fmt.Sprintf(field, victim)
			}
			refusal(t, err, arn, field, c.want, s.AdminPassword, vpw, pw)
			dbtest.Unchanged(t, h, arn, token, before)
			if got := aclState(t, s, victim, victim+redis.CloneSuffix); got != acl {
				t.Fatalf("the server's ACL users changed:\n%s\n%s", acl, got)
			}
			if !logsIn(t, s, victim, vpw) {
				t.Fatal("the victim's own password no longer logs in")
			}
			h.AssertNoSecretInLogs(s.AdminPassword, vpw)
		})
	}
}

// TestHostileFinishSecretNeverStripsAnotherUser: finishSecret's removal of
// old passwords is made by the master user; run on a pending version that
// names another user (whose passwords the secret does not hold), as if it
// were invoked without setSecret and testSecret, it must remove nothing:
// the server's own state shows the secret holds none of that user's
// passwords.
func TestHostileFinishSecretNeverStripsAnotherUser(t *testing.T) {
	s := redistest.Settings(t)
	victim, vpw := appUser(t, s, "victim_")
	other := redistest.Password()
	if err := s.Admin(t).AddPassword(context.Background(), victim, other); err != nil {
		t.Fatal(err)
	}
	h, _ := harness(t)
	masterARN := masterSecret(t, h.Em, s, nil)
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, victim, redistest.Password(), map[string]any{"masterarn": masterARN})))
	token := h.Open(arn)
	if err := h.Step(nil, "createSecret", arn, token); err != nil {
		t.Fatal(err)
	}
	acl := aclState(t, s, victim)
	err := h.Step(nil, "finishSecret", arn, token)
	refusal(t, err, arn, "user "+victim, "has none of the 2 passwords to keep", s.AdminPassword, vpw, other)
	if got := aclState(t, s, victim); got != acl {
		t.Fatalf("the victim's ACL changed:\n%s\n%s", acl, got)
	}
	if !logsIn(t, s, victim, vpw) || !logsIn(t, s, victim, other) {
		t.Fatal("a password of the victim stopped working")
	}
}

// TestHostileCABundleNamesAnyFile: "ca_bundle" may not name a file outside
// the function's own directory; the refusal comes in createSecret, before
// anything is stored, and is the same whether the file exists or not.
func TestHostileCABundleNamesAnyFile(t *testing.T) {
	s := redistest.Settings(t)
	var answers []string
	for _, path := range []string{"/etc/passwd", "/no/such/file.pem", "../../etc/ssl/certs/ca-certificates.crt", s.CAFile} {
		h, _ := harness(t)
		user, pw := appUser(t, s, "ca_")
		masterARN := masterSecret(t, h.Em, s, nil)
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "ca_bundle": path})))
		before := dbtest.Snapshot(t, h, arn)
		token, err := rotateOnce(t, h, arn)
		refusal(t, err, arn, `"ca_bundle"`, "bare name of a PEM file shipped with the function", pw)
		if !strings.HasPrefix(err.Error(), "createSecret ") {
			t.Fatalf("ca_bundle %s: refused by %v, want createSecret", path, err)
		}
		dbtest.Unchanged(t, h, arn, token, before)
		answers = append(answers, strings.ReplaceAll(err.Error(), arn, "<arn>"))
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Fatalf("the refusals differ, which tells the file system apart:\n%s\n%s", answers[0], a)
		}
	}
}
