package tlscert

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The Secrets Manager calls of a tlscert rotation with a CA held in a
// secret, per step (issue 14's budget: at most 9), the CA secret's reads
// included. Warm, the CA that createSecret loaded serves the later steps,
// and testSecret makes no call at all. finishSecret tags the secret with
// the new certificate's expiry for the rotation auditor (one call).
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	f := newFixture(t)
	var calls testbed.Calls
	counted := calls.Config(f.aws)
	arn := testbed.CreateSecret(t, f.em, `{"commonName":"svc.example.com"}`)
	testbed.AssertRotationCalls(t, f.em, &calls, arn, func() *rotation.Engine { return f.engineWith(counted) }, testbed.CallBudget{
		Warm: map[string]int{"createSecret": 5, "setSecret": 1, "testSecret": 0, "finishSecret": 3},
		Cold: map[string]int{"createSecret": 5, "setSecret": 3, "testSecret": 2, "finishSecret": 4},
		Max:  9,
	})
}
