package mysql_test

import (
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestNoPasswordInGeneralLog runs rotations of both strategies, the
// clone's creation included, for mysql_native_password and ed25519
// accounts, with MariaDB's general query log on: no new password may
// appear in it, while the statements that set them must.
func TestNoPasswordInGeneralLog(t *testing.T) {
	statements := dbtest.MyGeneralLog(t)
	h := dbtest.NewHarness(t, newTarget(t))
	var pending []string
	rotate := func(arn string, n int) {
		t.Helper()
		for i := range n {
			if _, err := h.Rotate(arn); err != nil {
				t.Fatalf("rotation %d: %v", i+1, err)
			}
			cur := h.Current(arn)
			mustLogIn(t, "AWSCURRENT", cur)
			pending = append(pending, cur.Password)
		}
	}
	for _, ed25519 := range []bool{false, true} {
		user, pw := dbtest.MyUser(t, "log")
		if ed25519 {
			dbtest.MyEd25519(t, user, pw)
		}
		rotate(testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, nil))), 2)

		master, mpw := dbtest.MyUser(t, "master")
		dbtest.MyExec(t, "GRANT CREATE USER, SELECT ON *.* TO `"+master+"`@`%` WITH GRANT OPTION")
		user, pw = dbtest.MyUser(t, "log")
		if ed25519 {
			dbtest.MyEd25519(t, user, pw)
		}
		masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))
		rotate(testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"masterarn": masterARN}))), 3)
	}
	logged := statements()
	all := strings.Join(logged, "\n")
	for _, want := range []string{"SET PASSWORD", "CREATE USER IF NOT EXISTS", "ALTER USER"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the general log holds no %q statement: logging did not capture the rotations (%d statements)", want, len(logged))
		}
	}
	for i, pw := range pending {
		if strings.Contains(all, pw) {
			t.Fatalf("pending password %d of %d appears in MariaDB's general log", i+1, len(pending))
		}
	}
	h.AssertNoSecretInLogs(pending...)
}
