package dbtarget_test

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// engine is what the tests of this package need of one database engine:
// its driver, its test server and the administrator's view of its accounts.
type engine struct {
	name   string
	driver dbtarget.Driver
	// user makes a login with a fresh name (prefix + random), dropped with
	// its clone when the test ends.
	user func(t testing.TB, prefix string) (name, password string)
	// masterUser makes a user allowed to create users and set passwords.
	masterUser func(t testing.TB) (name, password string)
	// secret is the user's secret at the test server, with extra fields.
	secret func(t testing.TB, user, password string, extra map[string]any) map[string]any
	// hashes returns the stored password hash of each account that exists
	// among names: what the administrator sees change when a password does.
	hashes func(t testing.TB, names ...string) map[string]string
	// host and port of the test server.
	host string
	port int
}

func engines(t testing.TB) []engine {
	st := dbtest.Settings(t)
	pgPort, _ := strconv.Atoi(st["PG_PORT"])
	myPort, _ := strconv.Atoi(st["MYSQL_PORT"])
	return []engine{{
		name: "postgres", driver: postgres.Driver{}, host: st["PG_HOST"], port: pgPort,
		user: func(t testing.TB, prefix string) (string, string) { return dbtest.PGUser(t, prefix, "") },
		masterUser: func(t testing.TB) (string, string) {
			return dbtest.PGUser(t, "master", "CREATEROLE")
		},
		secret: dbtest.PGSecret,
		hashes: func(t testing.TB, names ...string) map[string]string {
			rows, err := dbtest.PGAdmin(t).Query(context.Background(), "SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = ANY($1)", names)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			out := map[string]string{}
			for rows.Next() {
				var n, h string
				if err := rows.Scan(&n, &h); err != nil {
					t.Fatal(err)
				}
				out[n] = h
			}
			return out
		},
	}, {
		name: "mariadb", driver: mysql.Driver{}, host: st["MYSQL_HOST"], port: myPort,
		user: func(t testing.TB, prefix string) (string, string) { return dbtest.MyUser(t, prefix) },
		masterUser: func(t testing.TB) (string, string) {
			name, pw := dbtest.MyUser(t, "master")
			dbtest.MyExec(t, "GRANT CREATE USER, SELECT ON *.* TO `"+name+"`@`%` WITH GRANT OPTION")
			return name, pw
		},
		secret: dbtest.MySecret,
		hashes: func(t testing.TB, names ...string) map[string]string {
			out := map[string]string{}
			for _, n := range names {
				var h string
				err := dbtest.MyAdmin(t).QueryRow("SELECT authentication_string FROM mysql.user WHERE User = ?", n).Scan(&h)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				out[n] = h
			}
			return out
		},
	}}
}

// target returns the engine's target with the test configuration
// (dbtest.TargetConfig) changed by adjust, if not nil.
func (e engine) target(t testing.TB, adjust func(*dbtarget.Config)) *dbtarget.Target {
	return e.targetOver(t, e.driver, adjust)
}

// targetOver is target over drv (a wrapper of the engine's driver).
func (e engine) targetOver(t testing.TB, drv dbtarget.Driver, adjust func(*dbtarget.Config)) *dbtarget.Target {
	cfg := dbtest.TargetConfig(t)
	if adjust != nil {
		adjust(&cfg)
	}
	aws := testbed.AWSConfig(t)
	return dbtarget.New(cfg, drv, secretsmanager.NewFromConfig(aws), rds.NewFromConfig(aws))
}

// login logs in as user at the test server, over verified TLS.
func (e engine) login(t testing.TB, user, password string) error {
	t.Helper()
	tlsCfg, err := dbsecret.TLSConfig(true, e.host, dbtest.Settings(t)["DB_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ep := dbsecret.Endpoint{Host: e.host, Port: e.port, TLS: tlsCfg, Timeout: 5e9}
	if e.name == "postgres" {
		ep.DBName = "postgres"
	}
	c, err := e.driver.Connect(context.Background(), ep, user, password)
	if err == nil {
		c.Close()
	}
	return err
}

func (e engine) mustLogIn(t testing.TB, what, user, password string) {
	t.Helper()
	if err := e.login(t, user, password); err != nil {
		t.Fatalf("%s does not log in: %v", what, err)
	}
}

// version is one stored version of a secret.
type version = dbtest.Version

func snapshot(t testing.TB, h *dbtest.Harness, arn string) map[string]version {
	t.Helper()
	return dbtest.Snapshot(t, h, arn)
}

func unchanged(t testing.TB, h *dbtest.Harness, arn, token string, before map[string]version) {
	t.Helper()
	dbtest.Unchanged(t, h, arn, token, before)
}

func refused(t testing.TB, err error, arn, field, reason string, secrets ...string) {
	t.Helper()
	dbtest.Refused(t, err, arn, field, reason, secrets...)
}
