package postgres_test

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestNoPasswordInServerLog runs rotations of both strategies, the clone's
// creation and its settings included, with log_statement = 'all': no new
// password may appear in PostgreSQL's log, while the statements that set
// them (with their SCRAM verifiers) must.
func TestNoPasswordInServerLog(t *testing.T) {
	serverLog := dbtest.PGStatementLog(t)
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
	user, pw := dbtest.PGUser(t, "log", "")
	rotate(testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil))), 2)

	arn, user := alternatingWith(t, h, "CREATEROLE", "CREATEDB CONNECTION LIMIT 9")
	dbtest.PGExec(t, `ALTER ROLE `+pgx.Identifier{user}.Sanitize()+` SET work_mem = '4MB'`)
	rotate(arn, 3)

	logged := serverLog()
	for _, want := range []string{"CREATE ROLE", "ALTER ROLE", "PASSWORD 'SCRAM-SHA-256$4096:", "SET \"work_mem\""} {
		if !strings.Contains(logged, want) {
			t.Fatalf("the server log holds no %q: logging did not capture the rotations (%d bytes)", want, len(logged))
		}
	}
	for i, p := range pending {
		if strings.Contains(logged, p) {
			t.Fatalf("pending password %d of %d appears in PostgreSQL's log", i+1, len(pending))
		}
	}
	h.AssertNoSecretInLogs(pending...)
}
