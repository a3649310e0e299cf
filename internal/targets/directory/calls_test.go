package directory_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSecretsManagerCallsPerRotation counts the Secrets Manager calls of a
// directory rotation, per step (issue 14). They are the account layer's,
// the same for both directories: setSecret reads AWSCURRENT and AWSPENDING
// (and, with a master secret, that secret, and for alternating accounts
// AWSPREVIOUS, which proves control of the idle account); testSecret needs
// only the pending version, which a warm instance knows from createSecret.
// A cold step (a new Lambda instance) reads again what a warm one
// remembers.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	s := slapdServer(t)
	cfg := s.config(t)
	for _, c := range []struct {
		st     strategy
		budget testbed.CallBudget
	}{
		{single, testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 1, "testSecret": 0, "finishSecret": 2},
			Cold: map[string]int{"createSecret": 4, "setSecret": 3, "testSecret": 1, "finishSecret": 3},
			Max:  7,
		}},
		// The master secret: one read more in setSecret.
		{singleByMaster, testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 2, "testSecret": 0, "finishSecret": 2},
			Cold: map[string]int{"createSecret": 4, "setSecret": 4, "testSecret": 1, "finishSecret": 3},
			Max:  8,
		}},
		// And AWSPREVIOUS, the idle account's credentials, which prove that
		// the secret controls the account before the master resets it.
		{alternating, testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 3, "testSecret": 0, "finishSecret": 2},
			Cold: map[string]int{"createSecret": 4, "setSecret": 5, "testSecret": 1, "finishSecret": 3},
			Max:  9,
		}},
	} {
		t.Run(string(c.st), func(t *testing.T) {
			var calls testbed.Calls
			counted := calls.Config(testbed.AWSConfig(t))
			em := testbed.Emulator(t)
			f := s.newFixture(t, em, c.st, nil)
			sm := secretsmanager.NewFromConfig(counted)
			testbed.AssertRotationCalls(t, em, &calls, f.arn, func() *rotation.Engine {
				return rotation.New(sm, target(cfg, counted), rotation.Options{TargetType: "directory"})
			}, c.budget)
		})
	}
}
