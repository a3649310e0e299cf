package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// roleState is what a test compares of a role: each attribute, and each
// setting as "db/name=value" (db empty for all databases).
type roleState struct {
	attrs    map[string]string
	settings map[string]string
}

func readRoleState(t *testing.T, name string) roleState {
	t.Helper()
	c := dbtest.PGAdmin(t)
	ctx := context.Background()
	var super, inherit, createRole, createDB, login, replication, bypassRLS bool
	var connLimit int
	var validUntil *string
	if err := c.QueryRow(ctx, `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
		rolbypassrls, rolconnlimit, rolvaliduntil::text FROM pg_roles WHERE rolname = $1`, name).Scan(
		&super, &inherit, &createRole, &createDB, &login, &replication, &bypassRLS, &connLimit, &validUntil); err != nil {
		t.Fatalf("role %s: %v", name, err)
	}
	vu := "none"
	if validUntil != nil {
		vu = *validUntil
	}
	s := roleState{attrs: map[string]string{
		"SUPERUSER": fmt.Sprint(super), "INHERIT": fmt.Sprint(inherit), "CREATEROLE": fmt.Sprint(createRole),
		"CREATEDB": fmt.Sprint(createDB), "LOGIN": fmt.Sprint(login), "REPLICATION": fmt.Sprint(replication),
		"BYPASSRLS": fmt.Sprint(bypassRLS), "CONNECTION LIMIT": strconv.Itoa(connLimit), "VALID UNTIL": vu,
	}, settings: map[string]string{}}
	rows, err := c.Query(ctx, `SELECT COALESCE(d.datname, ''), s.setconfig FROM pg_db_role_setting s
		JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = $1`, name)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var db string
		var config []string
		if err := rows.Scan(&db, &config); err != nil {
			t.Fatal(err)
		}
		for _, kv := range config {
			k, v, _ := strings.Cut(kv, "=")
			s.settings[db+"/"+k] = v
		}
	}
	return s
}

// assertCopied fails unless clone has each attribute and setting of
// original (LOGIN and INHERIT aside: a clone always has both).
func assertCopied(t *testing.T, original, clone string) {
	t.Helper()
	o, c := readRoleState(t, original), readRoleState(t, clone)
	for _, a := range []string{"SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS", "CONNECTION LIMIT", "VALID UNTIL"} {
		if o.attrs[a] != c.attrs[a] {
			t.Errorf("%s: original %s, clone %s", a, o.attrs[a], c.attrs[a])
		}
	}
	if c.attrs["LOGIN"] != "true" || c.attrs["INHERIT"] != "true" {
		t.Errorf("clone LOGIN %s INHERIT %s", c.attrs["LOGIN"], c.attrs["INHERIT"])
	}
	if !maps.Equal(o.settings, c.settings) {
		t.Errorf("settings: original %q, clone %q", o.settings, c.settings)
	}
}

// showAs logs in as s and returns the values of the settings names.
func showAs(t *testing.T, s *dbsecret.Secret, names ...string) []string {
	t.Helper()
	st := dbtest.Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(st["PG_PORT"])
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = st["PG_HOST"], uint16(port), "postgres", s.Username, s.Password
	cfg.TLSConfig, cfg.Fallbacks = tlsCfg, nil
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("log in as %s: %v", s.Username, err)
	}
	defer c.Close(context.Background())
	var out []string
	for _, n := range names {
		var v string
		if err := c.QueryRow(context.Background(), "SELECT current_setting($1)", n).Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// alternatingWith makes a master role with masterAttrs and an application
// role with userAttrs, and the user secret that names the master secret.
func alternatingWith(t *testing.T, h *dbtest.Harness, masterAttrs, userAttrs string) (arn, user string) {
	t.Helper()
	master, mpw := dbtest.PGUser(t, "master", masterAttrs)
	user, pw := dbtest.PGUser(t, "app", userAttrs)
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, nil)))
	return testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"masterarn": masterARN}))), user
}

func rotateOK(t *testing.T, h *dbtest.Harness, arn string, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
	}
}

// TestCloneCopiesAttributesAndSettings (issue 9, finding 9): with a
// superuser master, the clone gets every attribute and setting of the
// original, the settings apply when the clone logs in, and a later change
// of the original reaches the clone at its next turn.
func TestCloneCopiesAttributesAndSettings(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	arn, user := alternatingWith(t, h, "SUPERUSER",
		"CREATEDB CREATEROLE BYPASSRLS REPLICATION CONNECTION LIMIT 7 VALID UNTIL '2099-12-31 00:00:00+00'")
	id := pgx.Identifier{user}.Sanitize()
	dbtest.PGExec(t,
		`ALTER ROLE `+id+` SET search_path = "$user", public, "My ""Schema"""`,
		`ALTER ROLE `+id+` SET work_mem = '8MB'`,
		`ALTER ROLE `+id+` SET myapp.note = 'it''s a \ test'`,
		`ALTER ROLE `+id+` IN DATABASE postgres SET statement_timeout = '5s'`)
	rotateOK(t, h, arn, 1)
	clone := h.Current(arn)
	if clone.Username != user+"_clone" {
		t.Fatalf("AWSCURRENT names %s", clone.Username)
	}
	assertCopied(t, user, clone.Username)
	got := showAs(t, clone, "search_path", "work_mem", "myapp.note", "statement_timeout")
	if want := []string{`"$user", public, "My ""Schema"""`, "8MB", `it's a \ test`, "5s"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("a session of the clone has %q, want %q", got, want)
	}

	dbtest.PGExec(t, `ALTER ROLE `+id+` NOCREATEDB NOREPLICATION CONNECTION LIMIT 3 VALID UNTIL 'infinity'`,
		`ALTER ROLE `+id+` RESET work_mem`, `ALTER ROLE `+id+` SET lock_timeout = '1s'`,
		`ALTER ROLE `+id+` IN DATABASE postgres RESET statement_timeout`)
	rotateOK(t, h, arn, 2) // the original, then the clone again
	if cur := h.Current(arn); cur.Username != clone.Username {
		t.Fatalf("AWSCURRENT names %s", cur.Username)
	}
	assertCopied(t, user, clone.Username)
}

// TestCloneWithCreateRoleMaster: a master with CREATEROLE only (like RDS's
// rds_superuser, which is no superuser) copies what PostgreSQL lets it
// give; an attribute it may not give (REPLICATION, BYPASSRLS and
// SUPERUSER on PostgreSQL 15) fails the rotation with an error naming it,
// and nothing is half done: no clone appears, or an existing clone keeps
// its attributes and password.
func TestCloneWithCreateRoleMaster(t *testing.T) {
	t.Run("copies what it may", func(t *testing.T) {
		h := dbtest.NewHarness(t, newTarget(t))
		arn, user := alternatingWith(t, h, "CREATEROLE", "CREATEDB CONNECTION LIMIT 5 VALID UNTIL '2099-01-01 00:00:00+00'")
		dbtest.PGExec(t, `ALTER ROLE `+pgx.Identifier{user}.Sanitize()+` SET search_path = app, public`)
		rotateOK(t, h, arn, 1)
		assertCopied(t, user, user+"_clone")
		mustLogIn(t, "clone", h.Current(arn))
	})
	for _, attr := range []string{"REPLICATION", "BYPASSRLS", "SUPERUSER"} {
		t.Run("refuses "+attr+" on the first clone", func(t *testing.T) {
			h := dbtest.NewHarness(t, newTarget(t))
			arn, user := alternatingWith(t, h, "CREATEROLE", "CREATEDB "+attr)
			before := h.Current(arn)
			_, err := h.Rotate(arn)
			if err == nil || !strings.Contains(err.Error(), "attribute "+attr) {
				t.Fatalf("want an error naming %s, got %v", attr, err)
			}
			var n int
			if err := dbtest.PGAdmin(t).QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname = $1", user+"_clone").Scan(&n); err != nil || n != 0 {
				t.Fatalf("a clone was left behind (%d, %v)", n, err)
			}
			if h.Current(arn).Password != before.Password {
				t.Fatal("AWSCURRENT changed")
			}
			mustLogIn(t, "original", before)
		})
	}
	t.Run("refuses REPLICATION added later", func(t *testing.T) {
		h := dbtest.NewHarness(t, newTarget(t))
		arn, user := alternatingWith(t, h, "CREATEROLE", "CREATEDB")
		rotateOK(t, h, arn, 2) // the clone made, then the original
		idle := h.At(arn, "AWSPREVIOUS")
		if idle.Username != user+"_clone" {
			t.Fatalf("AWSPREVIOUS names %s", idle.Username)
		}
		dbtest.PGExec(t, `ALTER ROLE `+pgx.Identifier{user}.Sanitize()+` REPLICATION NOCREATEDB`)
		_, err := h.Rotate(arn)
		if err == nil || !strings.Contains(err.Error(), "attribute REPLICATION") {
			t.Fatalf("want an error naming REPLICATION, got %v", err)
		}
		if s := readRoleState(t, idle.Username); s.attrs["REPLICATION"] != "false" || s.attrs["CREATEDB"] != "true" {
			t.Fatalf("the clone was half changed: %v", s.attrs)
		}
		mustLogIn(t, "clone with its last password", idle)
		mustLogIn(t, "AWSCURRENT", h.Current(arn))
	})
}
