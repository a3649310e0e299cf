package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func newTarget(t testing.TB) *dbtarget.Target {
	cfg := testbed.AWSConfig(t)
	return dbtarget.New(dbtest.TargetConfig(t), postgres.Driver{}, secretsmanager.NewFromConfig(cfg), rds.NewFromConfig(cfg))
}

// login reports how logging in with s ends: nil, or an error that wraps
// dbsecret.ErrCannotLogIn or ErrCannotReach.
func login(t testing.TB, s *dbsecret.Secret) error {
	t.Helper()
	st := dbtest.Settings(t)
	port, _ := strconv.Atoi(st["PG_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ep := dbsecret.Endpoint{Host: st["PG_HOST"], Port: port, DBName: "postgres", TLS: tlsCfg, Timeout: 5e9}
	c, err := postgres.Driver{}.Connect(context.Background(), ep, s.Username, s.Password)
	if err == nil {
		c.Close()
	}
	return err
}

func mustLogIn(t testing.TB, what string, s *dbsecret.Secret) {
	t.Helper()
	if err := login(t, s); err != nil {
		t.Fatalf("%s does not log in: %v", what, err)
	}
}

func mustNotLogIn(t testing.TB, what string, s *dbsecret.Secret) {
	t.Helper()
	if err := login(t, s); !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("%s: want a refused login, got %v", what, err)
	}
}

func rolpassword(t testing.TB, user string) string {
	var v string
	if err := dbtest.PGAdmin(t).QueryRow(context.Background(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", user).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSingleUserRotation(t *testing.T) {
	user, pw := dbtest.PGUser(t, "app", "")
	h := dbtest.NewHarness(t, newTarget(t))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"note": map[string]any{"team": "x"}})))
	seen := []string{pw}
	old := h.Current(arn)
	for i := 0; i < 2; i++ {
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		cur := h.Current(arn)
		if cur.Username != user || cur.Password == old.Password {
			t.Fatalf("rotation %d: user %s, password changed %v", i+1, cur.Username, cur.Password != old.Password)
		}
		if strings.ContainsAny(cur.Password, dbtarget.DefaultExcludeCharacters) {
			t.Fatalf("generated password has an excluded character")
		}
		mustLogIn(t, "new AWSCURRENT", cur)
		mustNotLogIn(t, "old password", old)
		if raw, ok := cur.Raw("note"); !ok || string(raw) != `{"team":"x"}` {
			t.Fatalf("unknown field not kept: %s", raw)
		}
		seen = append(seen, cur.Password)
		old = cur
	}
	if v := rolpassword(t, user); !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") {
		t.Fatalf("stored password is not a SCRAM verifier: %.14s", v)
	}
	h.AssertNoSecretInLogs(seen...)
}

func TestSetAndTestConvergeWhenRunTwice(t *testing.T) {
	user, pw := dbtest.PGUser(t, "app", "")
	h := dbtest.NewHarness(t, newTarget(t))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil)))
	token := h.Open(arn)
	for _, step := range localrun.Steps {
		for i := 0; i < 2; i++ {
			if err := h.Step(nil, step, arn, token); err != nil {
				t.Fatalf("%s run %d: %v", step, i+1, err)
			}
		}
	}
	mustLogIn(t, "AWSCURRENT", h.Current(arn))
}

// TestPlaintextOnlyWhenAsked: with "ssl": false the function connects in
// plaintext; without the test CA, verification fails and nothing falls back.
func TestTLSVerifiedAndPlaintextOnlyWhenAsked(t *testing.T) {
	user, pw := dbtest.PGUser(t, "app", "")
	// A function that does not trust the test CA.
	cfg := testbed.AWSConfig(t)
	h := dbtest.NewHarness(t, dbtarget.New(dbtarget.DefaultConfig(), postgres.Driver{}, secretsmanager.NewFromConfig(cfg), rds.NewFromConfig(cfg)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil)))
	_, err := h.Rotate(arn)
	if !errors.Is(err, dbsecret.ErrCannotReach) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("rotation without the CA: want a certificate error, got %v", err)
	}
	if cur := h.Current(arn); cur.Password != pw {
		t.Fatal("failed rotation changed AWSCURRENT")
	}
	mustLogIn(t, "untouched password", &dbsecret.Secret{Username: user, Password: pw})

	arn2 := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"ssl": false})))
	if _, err := h.Rotate(arn2); err != nil {
		t.Fatalf("rotation with ssl false: %v", err)
	}
	mustLogIn(t, "rotated over plaintext", h.Current(arn2))
}

// TestBadInputChangesNothing: each bad secret fails with an error naming
// the problem, and neither the password nor the labels change.
func TestBadInputChangesNothing(t *testing.T) {
	cases := []struct {
		name    string
		current map[string]any // overrides of the current value
		pending func(m map[string]any)
		want    string
		is      error
	}{
		{name: "unreachable", current: map[string]any{"port": 1}, want: "cannot reach", is: dbsecret.ErrCannotReach},
		{name: "wrong password", current: map[string]any{"password": "not-the-password"}, want: "with AWSCURRENT or AWSPREVIOUS", is: dbsecret.ErrCannotLogIn},
		{name: "no username", current: map[string]any{"username": nil}, want: `"username" is missing`},
		{name: "port mistyped", current: map[string]any{"port": "abc"}, want: `"port" must be a number`},
		{name: "other engine", current: map[string]any{"engine": "mysql"}, want: `engine "mysql" is not served`},
		{name: "other user", pending: func(m map[string]any) { m["username"] = "postgres" }, want: "refusing to change another user's password"},
		{name: "other host", pending: func(m map[string]any) { m["host"] = "localhost" }, want: "different hosts"},
		{name: "bad masterarn", current: map[string]any{"masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf"}, want: "read master secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user, pw := dbtest.PGUser(t, "app", "")
			h := dbtest.NewHarness(t, newTarget(t))
			value := dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, c.current))
			arn := testbed.CreateSecret(t, h.Em, value)
			token := h.Open(arn)
			var err error
			if c.pending != nil {
				if err := h.Step(nil, "createSecret", arn, token); err != nil {
					t.Fatal(err)
				}
				// Replace the pending value the way a confused caller would.
				p := dbtest.PGSecret(t, user, dbtest.Password(), nil)
				c.pending(p)
				if _, err := h.Em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
					SecretId: &arn, ClientRequestToken: &token, SecretString: strPtr(dbtest.SecretJSON(t, p)), VersionStages: []string{"AWSPENDING"},
				}); err != nil {
					t.Fatal(err)
				}
				// A fresh instance: the one that ran createSecret remembers
				// the value it stored (on AWS a version's value cannot change;
				// the emulators overwrite it).
				err = h.Step(h.NewEngine(h.Em.SM), "setSecret", arn, token)
			} else {
				for _, step := range localrun.Steps[:2] {
					if err = h.Step(nil, step, arn, token); err != nil {
						break
					}
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error is not %v: %v", c.is, err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatal("the password appears in the error")
			}
			if testbed.ValueAt(t, h.Em, arn, "AWSCURRENT") != value {
				t.Fatal("AWSCURRENT changed")
			}
			mustLogIn(t, "original password", &dbsecret.Secret{Username: user, Password: pw})
			h.AssertNoSecretInLogs(pw)
		})
	}
}

func strPtr(s string) *string { return &s }
