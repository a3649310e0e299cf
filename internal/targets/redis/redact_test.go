package redis

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The server names the rule it refuses in its error; a password rule must
// not reach the returned error.
func TestSetUserErrorHidesPasswordRules(t *testing.T) {
	env := testbed.EnvFile(t, "redis.env", "scripts/redis.sh")
	port, _ := strconv.Atoi(env["REDIS_TLS_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, env["REDIS_HOST"], env["REDIS_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	c, err := Connect(context.Background(), dbsecret.Endpoint{Host: env["REDIS_HOST"], Port: port, TLS: tlsCfg, Timeout: 5 * time.Second},
		env["REDIS_ADMIN_USER"], env["REDIS_ADMIN_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	user := testbed.UniqueName("redact_")
	defer c.conn.Do(context.Background(), "ACL", "DELUSER", user)
	// 63 hex digits and a "g": the server refuses it, quoting it.
	bad := "#" + strings.Repeat("0123456789abcdef", 4)[:63] + "g"
	err = c.setUser(context.Background(), user, bad)
	if err == nil {
		t.Fatal("the server accepted a malformed hash")
	}
	if !strings.Contains(err.Error(), "must be exactly 64 characters") {
		t.Errorf("error %q lost the server's reason", err)
	}
	if strings.Contains(err.Error(), bad[1:]) {
		t.Errorf("error %q repeats the hash", err)
	}
}
