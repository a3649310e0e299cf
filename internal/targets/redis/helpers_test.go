package redis_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	goredis "github.com/redis/go-redis/v9"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// config is the function's configuration in the tests: an empty
// environment, except that the test CA is the function's REDIS_CA_BUNDLE
// (the tests' secrets name no ca_bundle, as a deployment's should not).
func config(t testing.TB) redis.Config {
	t.Helper()
	cfg := redis.DefaultConfig()
	cfg.CABundle = redistest.Settings(t).CAFile
	return cfg
}

// counting is the driver with its logins counted.
type counting struct {
	account.Driver
	mu     sync.Mutex
	logins int
}

func (d *counting) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	d.mu.Lock()
	d.logins++
	d.mu.Unlock()
	return d.Driver.Connect(ctx, req)
}

func (d *counting) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logins
}

// newTarget returns the target with its AWS clients made from awsCfg, and
// its login counter.
func newTarget(t testing.TB, cfg redis.Config, awsCfg aws.Config) (*account.Target, *counting) {
	drv := &counting{Driver: redis.Driver{}}
	return account.New(cfg, drv, secretsmanager.NewFromConfig(awsCfg)), drv
}

// harness returns a harness over the target in the tests' configuration.
func harness(t *testing.T) (*dbtest.Harness, *counting) {
	tgt, drv := newTarget(t, config(t), testbed.AWSConfig(t))
	return dbtest.NewHarness(t, tgt), drv
}

// fields returns the secret of user at the TLS listener, with extra fields
// (nil deletes one).
func fields(s *redistest.Server, user, pw string, extra map[string]any) map[string]any {
	m := map[string]any{"engine": "redis", "host": s.Host, "port": s.TLSPort, "username": user, "password": pw}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// masterSecret stores the test bed's admin user as a master secret that
// names the TLS listener (extra changes its fields), and returns its ARN.
func masterSecret(t *testing.T, em *localrun.Emulator, s *redistest.Server, extra map[string]any) string {
	t.Helper()
	return testbed.CreateSecret(t, em, dbtest.SecretJSON(t, fields(s, s.AdminUser, s.AdminPassword, extra)))
}

// appUser makes an ACL user with an application's rights and returns its
// name and password.
func appUser(t *testing.T, s *redistest.Server, prefix string) (string, string) {
	t.Helper()
	user, pw := redistest.Name(prefix), redistest.Password()
	s.CreateUser(t, user, pw, "on", "~app:*", "&chan:*", "-@all", "+@read", "+@write", "+@connection")
	t.Cleanup(func() { s.DeleteUser(t, user+redis.CloneSuffix) })
	return user, pw
}

// single makes an application user and its single-user secret, whose
// master secret names the TLS listener.
func single(t *testing.T, h *dbtest.Harness, s *redistest.Server, prefix string) (arn, user, pw string) {
	t.Helper()
	user, pw = appUser(t, s, prefix)
	masterARN := masterSecret(t, h.Em, s, nil)
	arn = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN})))
	return arn, user, pw
}

// alternating is single with "strategy": "alternating-users".
func alternating(t *testing.T, h *dbtest.Harness, s *redistest.Server, prefix string) (arn, user, pw string) {
	t.Helper()
	user, pw = appUser(t, s, prefix)
	masterARN := masterSecret(t, h.Em, s, nil)
	arn = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "strategy": "alternating-users"})))
	return arn, user, pw
}

// login logs in once with a version of a secret, at the server it names
// (the TLS listener for credentials alone), over TLS verified against the
// test CA unless it says "ssl": false.
func login(t testing.TB, sec *dbsecret.Secret) error {
	t.Helper()
	s := redistest.Settings(t)
	if sec.Host == "" {
		c := *sec
		c.Host, c.Port, c.SSL = s.Host, s.TLSPort, true
		sec = &c
	}
	tlsCfg, err := dbsecret.TLSConfig(sec.SSL, sec.Host, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return redis.Probe(context.Background(), dbsecret.Endpoint{Host: sec.Host, Port: sec.Port, TLS: tlsCfg, Timeout: 5 * time.Second}, sec.Username, sec.Password)
}

// refused is the server's count of refused logins (ACL LOG, reason auth)
// of the users.
func refused(t testing.TB, s *redistest.Server, users ...string) int64 {
	t.Helper()
	var n int64
	for _, u := range users {
		n += s.AuthFailures(t, u)
	}
	return n
}

// assertNoHashInLogs fails when a password's SHA-256 (the form the server
// gets) appears in the logs: the plain passwords are checked by
// Harness.AssertNoSecretInLogs.
func assertNoHashInLogs(t testing.TB, logs string, passwords ...string) {
	t.Helper()
	for _, p := range passwords {
		if strings.Contains(logs, redis.PasswordHash(p)) {
			t.Fatal("a password's hash appears in the logs")
		}
	}
}

// crashHook makes the commands of the target's sessions count with the
// crasher's AWS calls. go-redis logs in lazily: the hook of a session's
// first command wraps the login it triggers (HELLO, AUTH), so that command
// counts before them and is sent after them; the crash points are the same
// (before the login, after HELLO, after AUTH, after each ACL command).
type crashHook struct{ c *testbed.Crasher }

func (h crashHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h crashHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := h.c.Do("redis "+strings.ToUpper(cmd.FullName()), func() error { return next(ctx, cmd) })
		if errors.Is(err, testbed.ErrCrash) {
			cmd.SetErr(err) // the caller reads the command's error
		}
		return err
	}
}

func (h crashHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
