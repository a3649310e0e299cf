package mysql

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
)

// adminConn is a session of the test server's administrator through the
// driver.
func adminConn(t *testing.T) *conn {
	t.Helper()
	st := dbtest.Settings(t)
	port, _ := strconv.Atoi(st["MYSQL_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, st["MYSQL_HOST"], st["MYSQL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ep := dbsecret.Endpoint{Host: st["MYSQL_HOST"], Port: port, TLS: tlsCfg, Timeout: 5e9}
	c, err := Driver{}.Connect(context.Background(), ep, st["MYSQL_ADMIN_USER"], st["MYSQL_ADMIN_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*conn)
}

// TestHashesMatchTheServer: the hashes computed here are those MariaDB
// computes itself for the same passwords.
func TestHashesMatchTheServer(t *testing.T) {
	db := dbtest.MyAdmin(t)
	for range 3 {
		pw := dbtest.Password()
		var server string
		if err := db.QueryRow("SELECT PASSWORD(?)", pw).Scan(&server); err != nil {
			t.Fatal(err)
		}
		if got := nativeHash(pw); got != server {
			t.Fatalf("nativeHash = %s, MariaDB's PASSWORD() = %s", got, server)
		}
		user, _ := dbtest.MyUser(t, "ed")
		dbtest.MyEd25519(t, user, pw)
		if err := db.QueryRow("SELECT authentication_string FROM mysql.user WHERE User = ?", user).Scan(&server); err != nil {
			t.Fatal(err)
		}
		if got, err := ed25519Hash(pw); err != nil || got != server {
			t.Fatalf("ed25519Hash = %s (%v), MariaDB stored %s", got, err, server)
		}
	}
}

// TestStatementErrorsWithholdSecrets: a statement carrying a hash that the
// server cannot parse comes back with its error number but without the
// server's message, which quotes the statement.
func TestStatementErrorsWithholdSecrets(t *testing.T) {
	c := adminConn(t)
	hash := nativeHash("pending-password-" + dbtest.Password())
	const bad = "SET PASSWORD = = ?"
	_, raw := c.c.ExecContext(context.Background(), bad, hash)
	if raw == nil || !strings.Contains(raw.Error(), hash[:10]) {
		t.Fatalf("the server's own message was expected to quote the hash, got %v", raw)
	}
	err := c.execSecret(context.Background(), []string{hash}, bad, hash)
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) || myErr.Number != 1064 {
		t.Fatalf("want error 1064 kept, got %v", err)
	}
	for i := 0; i+6 <= len(hash); i++ {
		if strings.Contains(err.Error(), hash[i:i+6]) {
			t.Fatalf("the error quotes the hash: %v", err)
		}
	}
}
