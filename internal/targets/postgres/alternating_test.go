package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// alternating makes a master role (CREATEROLE only, the least privilege the
// strategy needs), an application role that owns a table, and the user
// secret that names the master secret.
func alternating(t *testing.T, h *dbtest.Harness, userPrefix string) (arn, user, pw, table string) {
	t.Helper()
	master, mpw := dbtest.PGUser(t, "master", "CREATEROLE")
	user, pw = dbtest.PGUser(t, userPrefix, "")
	table = dbtest.Name("t_")
	dbtest.PGExec(t, "CREATE TABLE "+table+" (v int)", "INSERT INTO "+table+" VALUES (42)",
		"GRANT SELECT ON "+table+" TO "+pgx.Identifier{user}.Sanitize())
	t.Cleanup(func() { dbtest.PGExec(t, "DROP TABLE IF EXISTS "+table) })
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, nil)))
	arn = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	return arn, user, pw, table
}

func TestAlternatingUsersRotation(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	arn, user, pw, table := alternating(t, h, "app")
	seen := []string{pw}
	prev := h.Current(arn)
	for i, want := range []string{user + "_clone", user, user + "_clone"} {
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		cur := h.Current(arn)
		if cur.Username != want {
			t.Fatalf("rotation %d: AWSCURRENT names %s, want %s", i+1, cur.Username, want)
		}
		mustLogIn(t, "new AWSCURRENT", cur)
		// The user of AWSPREVIOUS keeps working: clients still holding it
		// are not locked out.
		mustLogIn(t, "AWSPREVIOUS", prev)
		seen = append(seen, cur.Password)
		prev = cur
	}
	// The clone has the original's privileges through membership.
	c := dbtest.PGAdmin(t)
	var v int
	if _, err := c.Exec(context.Background(), "SET ROLE "+pgx.Identifier{user + "_clone"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRow(context.Background(), "SELECT v FROM "+table).Scan(&v); err != nil || v != 42 {
		t.Fatalf("clone cannot read the original's table: %v", err)
	}
	c.Exec(context.Background(), "RESET ROLE")
	h.AssertNoSecretInLogs(seen...)
}

func TestAlternatingUserNameTooLong(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	// 60 characters: the clone would have 66, over PostgreSQL's 63.
	arn, _, pw, _ := alternating(t, h, strings.Repeat("u", 52))
	_, err := h.Rotate(arn)
	if err == nil || !strings.Contains(err.Error(), "allows 63") {
		t.Fatalf("want a name-length error, got %v", err)
	}
	if h.Current(arn).Password != pw {
		t.Fatal("AWSCURRENT changed")
	}
}

func TestAlternatingRefusesMasterOfAnotherServer(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	master, mpw := dbtest.PGUser(t, "master", "CREATEROLE")
	user, pw := dbtest.PGUser(t, "app", "")
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, map[string]any{"host": "localhost"})))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	_, err := h.Rotate(arn)
	if err == nil || !strings.Contains(err.Error(), "refusing to use it") {
		t.Fatalf("want a refusal, got %v", err)
	}
	mustLogIn(t, "original", &dbsecret.Secret{Username: user, Password: pw})
}
