package mysql_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func TestZeroDowntimeAlternatingUsers(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	master, mpw := dbtest.MyUser(t, "master")
	user, pw := dbtest.MyUser(t, "zd")
	dbtest.MyExec(t, "GRANT CREATE USER, SELECT ON *.* TO `"+master+"`@`%` WITH GRANT OPTION")
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	st := dbtest.MeasureLogins(t, h, arn, 4, 5, false, func(u, p string) error {
		return login(t, &dbsecret.Secret{Username: u, Password: p})
	})
	t.Logf("mariadb alternating users: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors",
		st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.OtherErrors)
	if st.AuthFailures != 0 || st.OtherErrors != 0 || st.Logins < 50 {
		t.Fatalf("want zero failed logins out of at least 50: %+v", st)
	}
}
