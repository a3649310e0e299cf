package postgres_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
)

// TestNoPasswordForWeakAuthentication: a server that asks for the
// password in cleartext or as MD5 (an attacker's, reached through a host a
// secret chose) gets no password byte, over TLS with a certificate the
// function trusts or in plaintext, and the refusal is a "cannot reach"
// error that says why.
func TestNoPasswordForWeakAuthentication(t *testing.T) {
	const password = "master-password-never-sent-42"
	for _, ask := range []dbtest.PGAuthRequest{dbtest.PGAskCleartext, dbtest.PGAskMD5} {
		for _, withTLS := range []bool{true, false} {
			name := ask.String()
			if withTLS {
				name += "/tls"
			} else {
				name += "/plaintext"
			}
			t.Run(name, func(t *testing.T) {
				var serverTLS, clientTLS *tls.Config
				if withTLS {
					serverTLS = dbtest.AttackerTLS(t)
					var err error
					clientTLS, err = dbsecret.TLSConfig(true, "127.0.0.1", dbtest.Settings(t)["PG_CA_FILE"])
					if err != nil {
						t.Fatal(err)
					}
				}
				thief := dbtest.NewPGPasswordThief(t, ask, serverTLS)
				ep := dbsecret.Endpoint{Host: thief.Host, Port: thief.Port, DBName: "postgres", TLS: clientTLS, Timeout: 5e9}
				c, err := postgres.Driver{}.Connect(context.Background(), ep, "master", password)
				if err == nil {
					c.Close()
					t.Fatal("logged in to the password thief")
				}
				if got := thief.Passwords(t); len(got) != 0 {
					t.Fatalf("the server asking for a %s password received %d password message(s)", ask, len(got))
				}
				if !errors.Is(err, dbsecret.ErrCannotReach) || errors.Is(err, dbsecret.ErrCannotLogIn) {
					t.Fatalf("want a cannot-reach error, got %v", err)
				}
				if want := "asked for the password " + map[dbtest.PGAuthRequest]string{dbtest.PGAskCleartext: "in cleartext", dbtest.PGAskMD5: "as an MD5 hash"}[ask]; !strings.Contains(err.Error(), want) {
					t.Fatalf("error does not say %q: %v", want, err)
				}
				if strings.Contains(err.Error(), password) || bytes.Contains([]byte(err.Error()), []byte("never-sent")) {
					t.Fatal("the password appears in the error")
				}
			})
		}
	}
}
