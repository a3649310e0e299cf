package mysql_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
)

func myLogin(t testing.TB) dbtest.LoginFunc {
	return func(u, p string) error { return login(t, &dbsecret.Secret{Username: u, Password: p}) }
}

func refused(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == 1045
}

// connectorClient is an application with a database/sql connector from
// pkg/dbcreds: its own host and TLS, the user and password of the secret.
func connectorClient(t testing.TB, src *dbcreds.Source) dbtest.Client {
	st := dbtest.Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, st["MYSQL_HOST"], st["MYSQL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context) (int, error) {
		var n int32
		c := dbcreds.NewConnector(src, func(cr dbcreds.Credentials) (driver.Connector, error) {
			atomic.AddInt32(&n, 1)
			cfg := gomysql.NewConfig()
			cfg.Net, cfg.Addr, cfg.TLS, cfg.Timeout = "tcp", net.JoinHostPort(st["MYSQL_HOST"], st["MYSQL_PORT"]), tlsCfg, 5e9
			cfg.User, cfg.Passwd = cr.Username, cr.Password
			return gomysql.NewConnector(cfg)
		}, refused)
		conn, err := c.Connect(ctx)
		if err != nil {
			kind := dbsecret.ErrCannotReach
			if refused(err) {
				kind = dbsecret.ErrCannotLogIn
			}
			return int(n), &dbsecret.ConnError{Kind: kind, Err: err}
		}
		conn.Close()
		return int(n), nil
	}
}

func TestZeroDowntimeAlternatingUsers(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	master, mpw := dbtest.MyUser(t, "master")
	user, pw := dbtest.MyUser(t, "zd")
	dbtest.MyExec(t, "GRANT CREATE USER, SELECT ON *.* TO `"+master+"`@`%` WITH GRANT OPTION")
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	st := dbtest.MeasureLogins(t, h, arn, 4, 5, dbtest.CachedCurrent(t, h, arn, myLogin(t)))
	t.Logf("mariadb alternating users: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors",
		st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.OtherErrors)
	if st.AuthFailures != 0 || st.OtherErrors != 0 || st.Logins < 50 {
		t.Fatalf("want zero failed logins out of at least 50: %+v", st)
	}
}

// TestZeroDowntimeSingleUser: without the client package, then with a
// database/sql connector of pkg/dbcreds, which must see no refused login.
func TestZeroDowntimeSingleUser(t *testing.T) {
	for _, withPackage := range []bool{false, true} {
		user, pw := dbtest.MyUser(t, "zd")
		h := dbtest.NewHarness(t, newTarget(t))
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, nil)))
		client, name := dbtest.CachedCurrent(t, h, arn, myLogin(t)), "AWSCURRENT re-read every 5 ms, no retry"
		if withPackage {
			client, name = connectorClient(t, dbtest.Source(t, h, arn)), "pkg/dbcreds (database/sql connector)"
		}
		st := dbtest.MeasureLogins(t, h, arn, 4, 5, client)
		t.Logf("mariadb single user, %s: %d clients, %d rotations in %v: %d logins, %d refused (%d retried), %d other errors",
			name, st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.Retried, st.OtherErrors)
		if st.OtherErrors != 0 || st.Logins < 50 {
			t.Fatalf("unexpected errors or too few logins: %+v", st)
		}
		if withPackage && st.AuthFailures != 0 {
			t.Fatalf("a client using pkg/dbcreds saw %d refused logins", st.AuthFailures)
		}
	}
}
