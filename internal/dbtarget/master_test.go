package dbtarget_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestMasterWithoutServerAtAnAllowedServer: a master secret of credentials
// only (no host, no aws:rds tag) is used at the user secret's server when
// MASTER_ALLOWED_SERVERS lists it, and rotations alternate as usual.
func TestMasterWithoutServerAtAnAllowedServer(t *testing.T) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) {
			master, mpw := e.masterUser(t)
			user, pw := e.user(t, "app")
			h := dbtest.NewHarness(t, e.target(t, func(c *dbtarget.Config) {
				c.MasterAllowedServers = []string{fmt.Sprintf("%s:%d", e.host, e.port)}
			}))
			masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, map[string]any{"username": master, "password": mpw}))
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, pw, map[string]any{"masterarn": masterARN})))
			for i, want := range []string{user + "_clone", user} {
				if _, err := h.Rotate(arn); err != nil {
					t.Fatalf("rotation %d: %v", i+1, err)
				}
				cur := h.Current(arn)
				if cur.Username != want {
					t.Fatalf("rotation %d: AWSCURRENT names %s, want %s", i+1, cur.Username, want)
				}
				e.mustLogIn(t, "AWSCURRENT", cur.Username, cur.Password)
			}
			h.AssertNoSecretInLogs(mpw, pw)
		})
	}
}

// TestMasterAllowedUsers: with MASTER_ALLOWED_USERS set, a secret whose
// user is not listed is refused in createSecret, before anything is stored.
func TestMasterAllowedUsers(t *testing.T) {
	e := engines(t)[0]
	master, mpw := e.masterUser(t)
	user, pw := e.user(t, "app")
	h := dbtest.NewHarness(t, e.target(t, func(c *dbtarget.Config) { c.MasterAllowedUsers = []string{"svc_*", "reporting"} }))
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, pw, map[string]any{"masterarn": masterARN})))
	before := snapshot(t, h, arn)
	token, err := rotateOnce(t, h, arn)
	refused(t, err, arn, `"username"`, "is not in MASTER_ALLOWED_USERS", mpw, pw)
	unchanged(t, h, arn, token, before)
	if got := e.hashes(t, user+"_clone"); len(got) != 0 {
		t.Fatal("the clone was made")
	}
}

// TestCABundleShippedWithTheFunction: a bare file name in "ca_bundle" is
// looked up in the function's directory, and trusted.
func TestCABundleShippedWithTheFunction(t *testing.T) {
	e := engines(t)[0]
	ca := dbtest.Settings(t)["DB_CA_FILE"]
	user, pw := e.user(t, "app")
	h := dbtest.NewHarness(t, e.target(t, func(c *dbtarget.Config) { c.CABundle, c.BundleDir = "", filepath.Dir(ca) }))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, pw, map[string]any{"ca_bundle": filepath.Base(ca)})))
	if _, err := h.Rotate(arn); err != nil {
		t.Fatal(err)
	}
	cur := h.Current(arn)
	e.mustLogIn(t, "AWSCURRENT", cur.Username, cur.Password)

	// A name the function does not ship: a clear error, nothing changed.
	arn = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, cur.Password, map[string]any{"ca_bundle": "missing.pem"})))
	_, err := rotateOnce(t, h, arn)
	refused(t, err, arn, `"ca_bundle"`, "is not a file shipped with the function", cur.Password)
	e.mustLogIn(t, "AWSCURRENT", cur.Username, cur.Password)
}

// TestMasterSecretWithoutTLSRefused: master credentials travel only over
// verified TLS; a master secret that says "ssl": false is refused before
// any connection as the master user.
func TestMasterSecretWithoutTLSRefused(t *testing.T) {
	e := engines(t)[0]
	master, mpw := e.masterUser(t)
	user, pw := e.user(t, "app")
	h := dbtest.NewHarness(t, e.target(t, nil))
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, master, mpw, map[string]any{"ssl": false})))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, pw, map[string]any{"masterarn": masterARN})))
	before := snapshot(t, h, arn)
	token, err := rotateOnce(t, h, arn)
	refused(t, err, arn, `"ssl": false`, "master credentials travel only over verified TLS", mpw, pw)
	unchanged(t, h, arn, token, before)
	if got := e.hashes(t, user+"_clone"); len(got) != 0 {
		t.Fatal("the clone was made")
	}
}
