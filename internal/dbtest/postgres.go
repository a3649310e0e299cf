package dbtest

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// PGAdmin connects to the test PostgreSQL as its superuser, over verified TLS.
func PGAdmin(t testing.TB) *pgx.Conn {
	t.Helper()
	s := Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, s["PG_HOST"], s["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(s["PG_PORT"])
	cfg.Host, cfg.Port, cfg.Database = s["PG_HOST"], uint16(port), "postgres"
	cfg.User, cfg.Password = s["PG_ADMIN_USER"], s["PG_ADMIN_PASSWORD"]
	cfg.TLSConfig, cfg.Fallbacks = tlsCfg, nil
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL as admin: %v (%s)", err, hint)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// PGExec runs statements as the superuser.
func PGExec(t testing.TB, sql ...string) {
	t.Helper()
	c := PGAdmin(t)
	for _, q := range sql {
		if _, err := c.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// PGUser creates a login role with a fresh name and password, dropped (with
// its clone) when the test ends.
func PGUser(t testing.TB, prefix string, attrs string) (name, password string) {
	t.Helper()
	name, password = Name(prefix), Password()
	id := pgx.Identifier{name}.Sanitize()
	PGExec(t, "CREATE ROLE "+id+" LOGIN "+attrs+" PASSWORD '"+password+"'")
	t.Cleanup(func() {
		c := PGAdmin(t)
		for _, r := range []string{name + dbsecret.CloneSuffix, name} {
			_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
		}
	})
	return name, password
}

// PGSecret is the secret of user at the test server. TLS is verified with
// the test CA that TargetConfig trusts (DB_CA_BUNDLE).
func PGSecret(t testing.TB, user, password string, extra map[string]any) map[string]any {
	t.Helper()
	s := Settings(t)
	port, _ := strconv.Atoi(s["PG_PORT"])
	m := map[string]any{
		"engine": "postgres", "host": s["PG_HOST"], "port": port, "username": user, "password": password,
		"dbname": "postgres",
	}
	return withExtra(m, extra)
}

// PGStatementLog turns on log_statement = 'all' on the test PostgreSQL
// until the test ends, and returns a function that reads what the server
// logged since (PG_LOG_FILE of db.env).
func PGStatementLog(t testing.TB) func() string {
	t.Helper()
	file := Settings(t)["PG_LOG_FILE"]
	if file == "" {
		t.Fatalf("db.env has no PG_LOG_FILE: %s (scripts/db.sh up writes it)", hint)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	start, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	PGExec(t, "ALTER SYSTEM SET log_statement = 'all'", "SELECT pg_reload_conf()")
	t.Cleanup(func() { PGExec(t, "ALTER SYSTEM RESET log_statement", "SELECT pg_reload_conf()") })
	// The postmaster rereads its configuration after the signal: wait
	// until a new session has the setting.
	for i := 0; ; i++ {
		var v string
		if err := PGAdmin(t).QueryRow(context.Background(), "SHOW log_statement").Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v == "all" {
			break
		}
		if i == 100 {
			t.Fatalf("log_statement is still %q after the reload", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() string {
		t.Helper()
		b, err := io.ReadAll(io.NewSectionReader(f, start, 1<<40))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}
