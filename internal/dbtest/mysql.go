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
