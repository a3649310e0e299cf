package postgres_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

const clients, rotations = 4, 5

func pgLogin(t testing.TB) dbtest.LoginFunc {
	return func(user, pw string) error { return login(t, &dbsecret.Secret{Username: user, Password: pw}) }
}

func TestZeroDowntimeAlternatingUsers(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	arn, _, _, _ := alternating(t, h, "zd")
	st := dbtest.MeasureLogins(t, h, arn, clients, rotations, false, pgLogin(t))
	t.Logf("postgres alternating users: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors",
		st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.OtherErrors)
	if st.AuthFailures != 0 || st.OtherErrors != 0 || st.Logins < 50 {
		t.Fatalf("want zero failed logins out of at least 50: %+v", st)
	}
}

func TestZeroDowntimeSingleUser(t *testing.T) {
	for _, retry := range []bool{false, true} {
		user, pw := dbtest.PGUser(t, "zd", "")
		h := dbtest.NewHarness(t, newTarget(t))
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil)))
		st := dbtest.MeasureLogins(t, h, arn, clients, rotations, retry, pgLogin(t))
		t.Logf("postgres single user, retry with AWSPENDING %v: %d clients, %d rotations in %v: %d logins, %d refused (%d retried), %d other errors",
			retry, st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.Retried, st.OtherErrors)
		if st.OtherErrors != 0 || st.Logins < 50 {
			t.Fatalf("unexpected errors or too few logins: %+v", st)
		}
		if retry && st.AuthFailures != 0 {
			t.Fatalf("a client that retries with AWSPENDING saw %d refused logins", st.AuthFailures)
		}
	}
}
