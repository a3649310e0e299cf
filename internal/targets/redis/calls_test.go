package redis_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSecretsManagerCallsPerRotation counts the Secrets Manager calls of a
// rotation, per step (issue 14), and the logins beside them:
//
//   - single user, warm: createSecret 4 (DescribeSecret, the empty pending
//     version, AWSCURRENT, PutSecretValue); setSecret 2 (DescribeSecret,
//     the master secret); testSecret 0 (the pending version is known from
//     createSecret); finishSecret 3 (DescribeSecret, the master secret,
//     UpdateSecretVersionStage). 9 in all, the floor of the strategy: the
//     database functions' single user plus the master secret, read in
//     setSecret and again by finishSecret's removal of the old passwords,
//     which only the admin user can make.
//   - alternating users, warm: setSecret reads AWSPREVIOUS (the proof that
//     the secret controls the idle user) besides the master secret, and
//     finishSecret has nothing to remove: 9 in all.
//
// Logins: single user 4 (the proof and the master user at setSecret, the
// pending credentials at testSecret, the master user at finishSecret),
// alternating users 3.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	s := redistest.Settings(t)
	for _, c := range []struct {
		strategy string
		budget   testbed.CallBudget
		logins   int
	}{{
		strategy: "single-user",
		budget: testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 2, "testSecret": 0, "finishSecret": 3},
			Cold: map[string]int{"createSecret": 4, "setSecret": 4, "testSecret": 1, "finishSecret": 5},
			Max:  9,
		},
		logins: 4,
	}, {
		strategy: "alternating-users",
		budget: testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 3, "testSecret": 0, "finishSecret": 2},
			Cold: map[string]int{"createSecret": 4, "setSecret": 5, "testSecret": 1, "finishSecret": 3},
			Max:  9,
		},
		logins: 3,
	}} {
		t.Run(c.strategy, func(t *testing.T) {
			var calls testbed.Calls
			counted := calls.Config(testbed.AWSConfig(t))
			em := testbed.Emulator(t)
			user, pw := appUser(t, s, "calls_")
			masterARN := masterSecret(t, em, s, nil)
			arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "strategy": c.strategy})))
			tgt, drv := newTarget(t, config(t), counted)
			var engines int
			before := 0
			testbed.AssertRotationCalls(t, em, &calls, arn, func() *rotation.Engine {
				// The engines of the first, unmeasured rotation, then of the
				// warm one (one engine), then of the cold one (one per step).
				if engines++; engines == 2 {
					before = drv.count()
				}
				if engines == 3 {
					if n := drv.count() - before; n != c.logins {
						t.Errorf("the warm rotation made %d logins, want %d", n, c.logins)
					}
				}
				return rotation.New(secretsmanager.NewFromConfig(counted), tgt, rotation.Options{TargetType: "redis", Function: "test"})
			}, c.budget)
		})
	}
}
