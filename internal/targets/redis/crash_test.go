package redis_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// crashSpec runs the shared crash tests (internal/dbtest) on a Redis
// secret: the single user, whose new password is added beside the old one
// and whose older passwords finishSecret removes (SeveralPasswords: after
// every rotation AWSCURRENT and AWSPREVIOUS log in and no older password
// of the secret does), or alternating users. The crashing target's Redis
// commands (AUTH, PING, ACL GETUSER, ACL SETUSER) count with its AWS calls,
// so every step, finishSecret's hook included, is killed after each of its
// external calls.
func crashSpec(t *testing.T, strategy string) dbtest.CrashSpec {
	s := redistest.Settings(t)
	cfg := config(t)
	return dbtest.CrashSpec{
		NewTarget: func(awsCfg aws.Config) rotation.Target {
			tgt, _ := newTarget(t, cfg, awsCfg)
			return tgt
		},
		NewCrashingTarget: func(awsCfg aws.Config, c *testbed.Crasher) rotation.Target {
			return account.New(cfg, redis.DriverWithHook(crashHook{c}), secretsmanager.NewFromConfig(awsCfg))
		},
		NewSecret: func(t *testing.T, em *localrun.Emulator) string {
			user, pw := appUser(t, s, "crash_")
			masterARN := masterSecret(t, em, s, nil)
			return testbed.CreateSecret(t, em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "strategy": strategy})))
		},
		Login: login,
		SetPassword: func(t testing.TB, user, password string) {
			if err := s.Admin(t).SetPassword(context.Background(), user, password); err != nil {
				t.Fatal(err)
			}
		},
		MasterSetsSingleUser: strategy == "single-user",
		SeveralPasswords:     true,
	}
}

func TestCrashesSingleUser(t *testing.T)       { dbtest.Crashes(t, crashSpec(t, "single-user")) }
func TestCrashesAlternatingUsers(t *testing.T) { dbtest.Crashes(t, crashSpec(t, "alternating-users")) }
func TestCrashAtEveryCallSingleUser(t *testing.T) {
	dbtest.CrashAtEveryCall(t, crashSpec(t, "single-user"))
}
func TestCrashAtEveryCallAlternatingUsers(t *testing.T) {
	dbtest.CrashAtEveryCall(t, crashSpec(t, "alternating-users"))
}
func TestAbandonedAfterSetSecretSingleUser(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t, "single-user"))
}
func TestAbandonedAfterSetSecretAlternatingUsers(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t, "alternating-users"))
}
func TestOtherVersionsChecked(t *testing.T) {
	dbtest.OtherVersionsChecked(t, crashSpec(t, "single-user"))
}
