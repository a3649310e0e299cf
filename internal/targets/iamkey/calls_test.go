package iamkey

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The Secrets Manager calls of an iamkey rotation, per step (issue 14's
// budget: at most 10). finishSecret tags the secret with the new key's
// creation time for the rotation auditor (one call).
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	f := newFixture(t)
	var calls testbed.Calls
	counted := calls.Config(f.cfg)
	arn, _, _, _ := f.secretWithKey()
	testbed.AssertRotationCalls(t, f.em, &calls, arn, func() *rotation.Engine { return f.engineWith(counted) }, testbed.CallBudget{
		Warm: map[string]int{"createSecret": 5, "setSecret": 1, "testSecret": 1, "finishSecret": 3},
		Cold: map[string]int{"createSecret": 5, "setSecret": 3, "testSecret": 2, "finishSecret": 4},
		Max:  10,
	})
}
