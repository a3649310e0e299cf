package mysql_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// crashSpec describes MariaDB to the shared crash tests of dbtest; with
// alternating, the secret names a master secret whose user may create
// users and grant what the application user has.
func crashSpec(t testing.TB, alternating bool) dbtest.CrashSpec {
	return dbtest.CrashSpec{
		NewTarget: func(cfg aws.Config) rotation.Target {
			return dbtarget.New(dbtest.TargetConfig(t), mysql.Driver{}, secretsmanager.NewFromConfig(cfg), rds.NewFromConfig(cfg))
		},
		NewSecret: func(t *testing.T, em *localrun.Emulator) string {
			user, pw := dbtest.MyUser(t, "crash")
			var extra map[string]any
			if alternating {
				master, mpw := dbtest.MyUser(t, "master")
				dbtest.MyExec(t, "GRANT CREATE USER, SELECT ON *.* TO `"+master+"`@`%` WITH GRANT OPTION")
				extra = map[string]any{"masterarn": testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))}
			}
			return testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, extra)))
		},
		Login: login,
		SetPassword: func(t testing.TB, user, password string) {
			if _, err := dbtest.MyAdmin(t).Exec("ALTER USER ?@'%' IDENTIFIED BY ?", user, password); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestCrashesSingleUser(t *testing.T)       { dbtest.Crashes(t, crashSpec(t, false)) }
func TestCrashesAlternatingUsers(t *testing.T) { dbtest.Crashes(t, crashSpec(t, true)) }
func TestCrashAtEveryCallSingleUser(t *testing.T) {
	dbtest.CrashAtEveryCall(t, crashSpec(t, false))
}
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
