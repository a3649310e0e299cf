package directory_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// noSecret fails when err's text holds any of the passwords.
func noSecret(t *testing.T, err error, passwords ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, p := range passwords {
		if p != "" && strings.Contains(err.Error(), p) {
			t.Fatalf("error carries a password: %v", err)
		}
	}
}

// wantKind fails unless err is a ConnError of kind and matches reason (nil:
// any).
func wantKind(t *testing.T, err error, kind, reason error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %v", kind)
	}
	var ce *dbsecret.ConnError
	if !errors.As(err, &ce) || !errors.Is(err, kind) {
		t.Fatalf("error %v (%T) is not a ConnError of kind %v", err, err, kind)
	}
	if reason != nil && !errors.Is(err, reason) {
		t.Fatalf("error %v does not match %v", err, reason)
	}
}

// wantRefusal fails unless err is a *Refusal for account matching reason.
func wantRefusal(t *testing.T, err error, account string, reason error) *directory.Refusal {
	t.Helper()
	var r *directory.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T) is not a *directory.Refusal", err, err)
	}
	if !errors.Is(err, reason) {
		t.Fatalf("refusal %v does not match %v", err, reason)
	}
	if !strings.Contains(err.Error(), account) {
		t.Fatalf("refusal %q does not name the account %s", err, account)
	}
	return r
}

// strangerTLS is a TLS configuration that trusts only a CA the server's
// certificate was not signed by.
func strangerTLS(t *testing.T, serverName string) *tls.Config {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "a CA the server does not use"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

func mustConnect(t *testing.T, ep directory.Endpoint, dn, password string) *directory.Conn {
	t.Helper()
	c, err := directory.Connect(testCtx(t), ep, dn, password)
	if err != nil {
		t.Fatalf("connect as %s: %v", dn, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// works fails unless dn binds (and probes) with password.
func works(t *testing.T, ep directory.Endpoint, dn, password string) {
	t.Helper()
	c := mustConnect(t, ep, dn, password)
	if err := c.Probe(testCtx(t)); err != nil {
		t.Fatalf("probe as %s: %v", dn, err)
	}
}

// refused fails unless a bind as dn with password is refused for the
// credentials.
func refused(t *testing.T, ep directory.Endpoint, dn, password string) {
	t.Helper()
	c, err := directory.Connect(testCtx(t), ep, dn, password)
	if err == nil {
		c.Close()
		t.Fatalf("bind as %s with a password that should no longer work succeeded", dn)
	}
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
	noSecret(t, err, password)
}
