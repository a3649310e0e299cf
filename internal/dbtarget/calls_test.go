package dbtarget_test

import (
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The Secrets Manager calls of a database rotation, per step, the master
// secret's read included (issue 14's budget: at most 9). Alternating
// users cost one call more in setSecret than a single user: the master
// secret; and one more in a steady state, where the proof that the secret
// controls the idle user is AWSPREVIOUS logging in as it.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	for _, e := range engines(t) {
		for _, alternating := range []bool{false, true} {
			name := e.name + "/single user"
			b := testbed.CallBudget{
				Warm: map[string]int{"createSecret": 4, "setSecret": 1, "testSecret": 0, "finishSecret": 2},
				Cold: map[string]int{"createSecret": 4, "setSecret": 3, "testSecret": 1, "finishSecret": 3},
				Max:  9,
			}
			if alternating {
				name = e.name + "/alternating users"
				b.Warm["setSecret"], b.Cold["setSecret"] = 3, 5
			}
			t.Run(name, func(t *testing.T) {
				var calls testbed.Calls
				counted := calls.Config(testbed.AWSConfig(t))
				sm := secretsmanager.NewFromConfig(counted)
				target := dbtarget.New(dbtest.TargetConfig(t), e.driver, sm, rds.NewFromConfig(counted))
				em := localrun.NewEmulator(testbed.AWSConfig(t))
				user, pw := e.user(t, "calls")
				var extra map[string]any
				if alternating {
					master, mpw := e.masterUser(t)
					extra = map[string]any{"masterarn": testbed.CreateSecret(t, em, dbtest.SecretJSON(t, e.secret(t, master, mpw, nil)))}
				}
				arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, e.secret(t, user, pw, extra)))
				testbed.AssertRotationCalls(t, em, &calls, arn, func() *rotation.Engine {
					return rotation.New(sm, target, rotation.Options{TargetType: e.name, Logger: slog.New(slog.DiscardHandler)})
				}, b)
				cur, err := dbsecret.Parse(testbed.ValueAt(t, em, arn, "AWSCURRENT"), dbsecret.Defaults{})
				if err != nil {
					t.Fatal(err)
				}
				e.mustLogIn(t, "AWSCURRENT after the rotations", cur.Username, cur.Password)
			})
		}
	}
}
