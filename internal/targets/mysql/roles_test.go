package mysql_test

import (
	"database/sql"
	"net"
	"strings"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// queryAs runs q in a new session of s and returns its one integer.
func queryAs(t testing.TB, s *dbsecret.Secret, q string) (int, error) {
	t.Helper()
	st := dbtest.Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, st["MYSQL_HOST"], st["MYSQL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.TLS = s.Username, s.Password, tlsCfg
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(st["MYSQL_HOST"], st["MYSQL_PORT"])
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	var v int
	err = db.QueryRow(q).Scan(&v)
	return v, err
}

func showGrants(t testing.TB, user string) string {
	t.Helper()
	rows, err := dbtest.MyAdmin(t).Query("SHOW GRANTS FOR ?@'%'", user)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return strings.Join(out, "\n")
}

// TestAlternatingUsersWithDefaultRole: a user whose privileges come from a
// default role (SHOW GRANTS prints SET DEFAULT ROLE, which the grant replay
// refused) rotates; its clone gets the role and the default role, so that a
// new session of the clone has the role's privileges without SET ROLE; and
// a default role the original loses, the clone loses at its next turn.
func TestAlternatingUsersWithDefaultRole(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	master, mpw := dbtest.MyUser(t, "master")
	user, pw := dbtest.MyUser(t, "app")
	role, db := dbtest.Name("role_"), dbtest.Name("db_")
	dbtest.MyExec(t, "CREATE ROLE "+role, "CREATE DATABASE "+db, "CREATE TABLE "+db+".t (v int)", "INSERT INTO "+db+".t VALUES (42)",
		"GRANT SELECT ON "+db+".* TO "+role,
		"GRANT "+role+" TO `"+user+"`@`%`", "SET DEFAULT ROLE "+role+" FOR `"+user+"`@`%`",
		"GRANT CREATE USER, SELECT ON *.* TO `"+master+"`@`%` WITH GRANT OPTION",
		"GRANT "+role+" TO `"+master+"`@`%` WITH ADMIN OPTION")
	t.Cleanup(func() { dbtest.MyExec(t, "DROP DATABASE IF EXISTS "+db, "DROP ROLE IF EXISTS "+role) })
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	seen := []string{pw, mpw}

	if _, err := h.Rotate(arn); err != nil {
		t.Fatalf("rotation 1: %v", err)
	}
	clone := h.Current(arn)
	seen = append(seen, clone.Password)
	if clone.Username != user+"_clone" {
		t.Fatalf("AWSCURRENT names %s", clone.Username)
	}
	grants := showGrants(t, clone.Username)
	for _, want := range []string{"GRANT `" + role + "` TO `" + clone.Username + "`@`%`", "SET DEFAULT ROLE `" + role + "` FOR `" + clone.Username + "`@`%`"} {
		if !strings.Contains(grants, want) {
			t.Fatalf("clone lacks %q:\n%s", want, grants)
		}
	}
	if v, err := queryAs(t, clone, "SELECT v FROM "+db+".t"); err != nil || v != 42 {
		t.Fatalf("a new session of the clone cannot read through its default role: %v", err)
	}

	// The original loses its default role: the clone follows when it is
	// next the pending user (rotation 3).
	dbtest.MyExec(t, "SET DEFAULT ROLE NONE FOR `"+user+"`@`%`")
	for i := 2; i <= 3; i++ {
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		seen = append(seen, h.Current(arn).Password)
	}
	if g := showGrants(t, user+"_clone"); strings.Contains(g, "SET DEFAULT ROLE") || !strings.Contains(g, "GRANT `"+role+"`") {
		t.Fatalf("clone's default role not removed, or its role lost:\n%s", g)
	}
	h.AssertNoSecretInLogs(seen...)
}
