package mysql_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
)

// TestNoPasswordForWeakPlugins: a server that switches the authentication
// to mysql_clear_password (the password itself) or mysql_old_password
// (pre-4.1 hashing) gets nothing that holds the password, and the refusal
// is a cannot-reach error that says why without advising to allow it.
func TestNoPasswordForWeakPlugins(t *testing.T) {
	const password = "master-password-never-sent-42"
	for _, plugin := range []string{"mysql_clear_password", "mysql_old_password"} {
		t.Run(plugin, func(t *testing.T) {
			thief := dbtest.NewMyPasswordThief(t, plugin)
			ep := dbsecret.Endpoint{Host: thief.Host, Port: thief.Port, Timeout: 5e9}
			c, err := mysql.Driver{}.Connect(context.Background(), ep, "master", password)
			if err == nil {
				c.Close()
				t.Fatal("logged in to the password thief")
			}
			if got := thief.Received(t); bytes.Contains(got, []byte(password)) {
				t.Fatalf("the server asking for %s received the password", plugin)
			}
			if !errors.Is(err, dbsecret.ErrCannotReach) || !strings.Contains(err.Error(), "forms this function refuses") ||
				strings.Contains(err.Error(), "allowCleartextPasswords") || strings.Contains(err.Error(), password) {
				t.Fatalf("want a cannot-reach refusal naming the reason, got %v", err)
			}
		})
	}
}

// TestMalformedAuthenticationRetriedOnce: go-sql-driver mistakes one
// MariaDB ed25519 nonce in 256 for a malformed packet, so Connect tries a
// second time, and no more: a server whose every answer is malformed (this
// one sends a 20-byte ed25519 nonce) sees two connections.
func TestMalformedAuthenticationRetriedOnce(t *testing.T) {
	server := dbtest.NewMyPasswordThief(t, "client_ed25519")
	ep := dbsecret.Endpoint{Host: server.Host, Port: server.Port, Timeout: 5e9}
	_, err := mysql.Driver{}.Connect(context.Background(), ep, "app", "password-of-app-1234")
	if !errors.Is(err, dbsecret.ErrCannotReach) || !strings.Contains(err.Error(), "malformed packet") {
		t.Fatalf("want a malformed-packet error, got %v", err)
	}
	server.Received(t)
	if n := server.Connections(); n != 2 {
		t.Fatalf("Connect made %d connections, want 2", n)
	}
}
