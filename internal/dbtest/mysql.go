package dbtest

import (
	"database/sql"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// MyAdmin connects to the test MariaDB as its admin user, over verified TLS.
func MyAdmin(t testing.TB) *sql.DB {
	t.Helper()
	s := Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, s["MYSQL_HOST"], s["MYSQL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = s["MYSQL_ADMIN_USER"], s["MYSQL_ADMIN_PASSWORD"]
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(s["MYSQL_HOST"], s["MYSQL_PORT"])
	cfg.TLS, cfg.InterpolateParams, cfg.Timeout = tlsCfg, true, 5*time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	if err := db.Ping(); err != nil {
		t.Fatalf("connect to the test MariaDB as admin: %v (%s)", err, hint)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// MyExec runs statements as the admin user.
func MyExec(t testing.TB, sql ...string) {
	t.Helper()
	db := MyAdmin(t)
	for _, q := range sql {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// MyUser creates the account 'name'@'%' with a fresh name and password,
// dropped (with its clone) when the test ends.
func MyUser(t testing.TB, prefix string) (name, password string) {
	t.Helper()
	name, password = Name(prefix), Password()
	db := MyAdmin(t)
	if _, err := db.Exec("CREATE USER ?@'%' IDENTIFIED BY ?", name, password); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db := MyAdmin(t)
		for _, u := range []string{name + dbsecret.CloneSuffix, name} {
			_, _ = db.Exec("DROP USER IF EXISTS ?@'%'", u)
		}
	})
	return name, password
}

// MySecret is the secret of user at the test server. TLS is verified with
// the test CA that TargetConfig trusts (DB_CA_BUNDLE).
func MySecret(t testing.TB, user, password string, extra map[string]any) map[string]any {
	t.Helper()
	s := Settings(t)
	port, _ := strconv.Atoi(s["MYSQL_PORT"])
	m := map[string]any{
		"engine": "mariadb", "host": s["MYSQL_HOST"], "port": port, "username": user, "password": password,
	}
	return withExtra(m, extra)
}

// MyGeneralLog turns on the test MariaDB's general query log (to the table
// mysql.general_log) until the test ends, and returns a function that
// reads every statement logged since.
func MyGeneralLog(t testing.TB) func() []string {
	t.Helper()
	db := MyAdmin(t)
	var output string
	var on int
	if err := db.QueryRow("SELECT @@GLOBAL.log_output, @@GLOBAL.general_log").Scan(&output, &on); err != nil {
		t.Fatal(err)
	}
	var since string
	if err := db.QueryRow("SELECT NOW(6)").Scan(&since); err != nil {
		t.Fatal(err)
	}
	MyExec(t, "SET GLOBAL log_output = 'TABLE'", "SET GLOBAL general_log = ON")
	t.Cleanup(func() {
		db := MyAdmin(t)
		_, _ = db.Exec("SET GLOBAL general_log = ?", on)
		_, _ = db.Exec("SET GLOBAL log_output = ?", output)
	})
	return func() []string {
		t.Helper()
		rows, err := MyAdmin(t).Query("SELECT argument FROM mysql.general_log WHERE event_time >= ? AND command_type IN ('Query', 'Execute', 'Prepare')", since)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a []byte
			if err := rows.Scan(&a); err != nil {
				t.Fatal(err)
			}
			out = append(out, string(a))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// MyEd25519 installs MariaDB's ed25519 authentication plugin unless the
// test server has it, and makes user an ed25519 account with password.
func MyEd25519(t testing.TB, user, password string) {
	t.Helper()
	db := MyAdmin(t)
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519' AND PLUGIN_STATUS = 'ACTIVE'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		MyExec(t, "INSTALL SONAME 'auth_ed25519'")
	}
	if _, err := db.Exec("ALTER USER ?@'%' IDENTIFIED VIA ed25519 USING PASSWORD(?)", user, password); err != nil {
		t.Fatal(err)
	}
}
