package dbtarget_test

// The hostile-input suite of the database functions: each test is an
// attack of issue 9 that a writer of one secret (PutSecretValue on its own
// database secret, nothing more) can try, played against the real servers
// of scripts/db.sh, with dbtest.AttackerPG as the attacker's own server.
// Each refusal must name the secret, the field and the reason, and leave
// every version, label and database account as it was.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
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

// TestHostileMasterSentToUserChosenHost: a master secret that holds only
// credentials (no host, no aws:rds tag) must not follow the user secret to
// a server the user secret chooses. The attacker runs that server and
// knows the user secret's password, so the user's own login there succeeds.
func TestHostileMasterSentToUserChosenHost(t *testing.T) {
	pg := engines(t)[0]
	master, mpw := pg.masterUser(t)
	em := testbed.Emulator(t)
	masterARN := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, map[string]any{"username": master, "password": mpw}))
	attackerPW := dbtest.Password()
	// The attacker's secret: its user at its own server, in plaintext,
	// naming the credentials-only master secret.
	attack := func(t *testing.T, h *dbtest.Harness, port int) (arn string, before map[string]version, token string, err error) {
		arn = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, map[string]any{
			"engine": "postgres", "host": "127.0.0.1", "port": port, "username": "app", "password": attackerPW,
			"ssl": false, "masterarn": masterARN,
		}))
		before = snapshot(t, h, arn)
		token, err = rotateOnce(t, h, arn)
		return arn, before, token, err
	}

	t.Run("no server allowed", func(t *testing.T) {
		fake := dbtest.NewAttackerPG(t, map[string]string{"app": attackerPW})
		h := dbtest.NewHarness(t, pg.target(t, nil))
		arn, before, token, err := attack(t, h, fake.Port)
		if fake.Saw(master, mpw) {
			t.Fatalf("the attacker's server saw the master user (%d connections)", len(fake.Attempts()))
		}
		refused(t, err, arn, `"masterarn"`, "MASTER_ALLOWED_SERVERS does not list 127.0.0.1:", mpw, attackerPW)
		unchanged(t, h, arn, token, before)
		pg.mustLogIn(t, "the master user's password", master, mpw)
		h.AssertNoSecretInLogs(mpw)
	})

	// MASTER_ALLOWED_SERVERS names the attacker's server (a mistake, or an
	// attacker on the network of an allowed server): the master user's
	// credentials still travel only over verified TLS, so a server without
	// a certificate for its name learns nothing, not even the user name.
	t.Run("allowed server without a verified certificate", func(t *testing.T) {
		fake := dbtest.NewAttackerPG(t, map[string]string{"app": attackerPW})
		h := dbtest.NewHarness(t, pg.target(t, func(c *dbtarget.Config) {
			c.MasterAllowedServers = []string{fmt.Sprintf("127.0.0.1:%d", fake.Port)}
		}))
		arn, before, token, err := attack(t, h, fake.Port)
		if fake.Saw(master, mpw) {
			t.Fatalf("the attacker's server saw the master user (%d connections)", len(fake.Attempts()))
		}
		refused(t, err, arn, "log in as master user "+master, "cannot reach", mpw, attackerPW)
		tls := false
		for _, a := range fake.Attempts() {
			tls = tls || a.SSLRequested
		}
		if !tls {
			t.Fatal("the master user's connection did not ask for TLS")
		}
		unchanged(t, h, arn, token, before)
		h.AssertNoSecretInLogs(mpw)
	})
}

// TestHostileAlternatingUserSteersTheMaster: the secret's "username" must
// not choose whose password the master user sets. PostgreSQL "reporting",
// MariaDB "victim": roles the attacker does not control.
func TestHostileAlternatingUserSteersTheMaster(t *testing.T) {
	for _, e := range engines(t) {
		prefix := map[string]string{"postgres": "reporting", "mariadb": "victim"}[e.name]
		for _, c := range []struct {
			name string
			// secret returns the attacker's username and password.
			secret func(t *testing.T, victim string) (user, password string)
			field  string
			reason string
		}{{
			// Today's attack: "<victim>_clone" made the master reset <victim>.
			name:   "clone name of another user",
			secret: func(t *testing.T, victim string) (string, string) { return victim + "_clone", dbtest.Password() },
			field:  `"username"`, reason: "no version of the secret proves control of",
		}, {
			// The attacker even controls an account of that name: still
			// not the base user.
			name: "attacker's own account named like the clone",
			secret: func(t *testing.T, victim string) (string, string) {
				pw := dbtest.Password()
				if e.name == "postgres" {
					dbtest.PGExec(t, `CREATE ROLE "`+victim+`_clone" LOGIN PASSWORD '`+pw+`'`)
				} else {
					dbtest.MyExec(t, "CREATE USER `"+victim+"_clone`@`%` IDENTIFIED BY '"+pw+"'")
				}
				return victim + "_clone", pw
			},
			field: `"username"`, reason: "no version of the secret proves control of",
		}, {
			// The base user's name without its password: the master would
			// make <victim>_clone with the victim's privileges.
			name:   "base user without its password",
			secret: func(t *testing.T, victim string) (string, string) { return victim, dbtest.Password() },
			field:  `"password"`, reason: "AWSCURRENT does not log in as",
		}} {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				master, mpw := e.masterUser(t)
				victim, vpw := e.user(t, prefix)
				user, pw := c.secret(t, victim)
				h := dbtest.NewHarness(t, e.target(t, nil))
				masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, master, mpw, nil)))
				arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, pw, map[string]any{"masterarn": masterARN})))
				accounts := e.hashes(t, victim, victim+"_clone", master)
				before := snapshot(t, h, arn)
				token, err := rotateOnce(t, h, arn)
				refused(t, err, arn, c.field, c.reason, mpw, vpw, pw)
				unchanged(t, h, arn, token, before)
				if got := e.hashes(t, victim, victim+"_clone", master); fmt.Sprint(got) != fmt.Sprint(accounts) {
					t.Fatalf("database accounts changed: %v -> %v", keys(accounts), keys(got))
				}
				e.mustLogIn(t, "the victim's own password", victim, vpw)
				h.AssertNoSecretInLogs(mpw, vpw)
			})
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestHostileCABundleNamesAnyFile: "ca_bundle" may not name a file outside
// the function's own directory. A path is refused before any file is
// opened, with the same answer whether the file exists or not, and a PEM
// file of the attacker's choosing never becomes a trusted root.
func TestHostileCABundleNamesAnyFile(t *testing.T) {
	pg := engines(t)[0]
	testCA := dbtest.Settings(t)["DB_CA_FILE"]
	var answers []string
	for _, path := range []string{
		"/etc/passwd",
		"/no/such/file.pem",
		"../../../../etc/ssl/certs/ca-certificates.crt",
		testCA, // a PEM file: would verify the server, trusted by no setting
		filepath.Base(testCA) + "/../" + filepath.Base(testCA),
	} {
		user, pw := pg.user(t, "app")
		// The function trusts no test CA: only the secret names one.
		h := dbtest.NewHarness(t, pg.target(t, func(c *dbtarget.Config) { c.CABundle = "" }))
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, pg.secret(t, user, pw, map[string]any{"ca_bundle": path})))
		before := snapshot(t, h, arn)
		token, err := rotateOnce(t, h, arn)
		refused(t, err, arn, `"ca_bundle"`, "bare name of a PEM file shipped with the function", pw)
		if !strings.HasPrefix(err.Error(), "createSecret ") {
			t.Fatalf("ca_bundle %s: refused by %v, want createSecret, before anything is stored", path, err)
		}
		unchanged(t, h, arn, token, before)
		pg.mustLogIn(t, "the untouched password", user, pw)
		answers = append(answers, strings.ReplaceAll(err.Error(), arn, "<arn>"))
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Fatalf("the refusals differ, which tells the file system apart:\n%s\n%s", answers[0], a)
		}
	}
	if _, err := os.Stat(testCA); err != nil {
		t.Fatal(err)
	}
}
