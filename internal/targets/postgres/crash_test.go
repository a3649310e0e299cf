package postgres_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// crashSpec describes PostgreSQL to the shared crash tests of dbtest; with
// alternating, the secret names a master secret (a CREATEROLE role).
func crashSpec(t testing.TB, alternating bool) dbtest.CrashSpec {
	return dbtest.CrashSpec{
		NewTarget: func(cfg aws.Config) rotation.Target {
			return dbtarget.New(dbtest.TargetConfig(t), postgres.Driver{}, secretsmanager.NewFromConfig(cfg), rds.NewFromConfig(cfg))
		},
		NewSecret: func(t *testing.T, em *localrun.Emulator) string {
			user, pw := dbtest.PGUser(t, "crash", "")
			var extra map[string]any
			if alternating {
				master, mpw := dbtest.PGUser(t, "master", "CREATEROLE")
				extra = map[string]any{"masterarn": testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, nil)))}
			}
			return testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, extra)))
		},
		Login: login,
		SetPassword: func(t testing.TB, user, password string) {
			dbtest.PGExec(t, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" PASSWORD '"+password+"'")
		},
	}
}

func TestCrashesSingleUser(t *testing.T)          { dbtest.Crashes(t, crashSpec(t, false)) }
func TestCrashesAlternatingUsers(t *testing.T)    { dbtest.Crashes(t, crashSpec(t, true)) }
func TestCrashAtEveryCallSingleUser(t *testing.T) { dbtest.CrashAtEveryCall(t, crashSpec(t, false)) }
func TestCrashAtEveryCallAlternatingUsers(t *testing.T) {
	dbtest.CrashAtEveryCall(t, crashSpec(t, true))
}
func TestAbandonedAfterSetSecretSingleUser(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t, false))
}
func TestAbandonedAfterSetSecretAlternatingUsers(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t, true))
}
func TestOtherVersionsChecked(t *testing.T) { dbtest.OtherVersionsChecked(t, crashSpec(t, false)) }
