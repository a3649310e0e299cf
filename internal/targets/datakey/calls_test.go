package datakey_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The Secrets Manager calls of a datakey rotation, per step (issue 14's
// budget: at most 8). testSecret reads AWSCURRENT to check that the pending
// keyring still carries the current key: that read is the floor of a
// step that must not let data become unreadable.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(e.symmetricKey(), nil)
	var calls testbed.Calls
	counted := calls.Config(e.cfg)
	sm, k := secretsmanager.NewFromConfig(counted), kms.NewFromConfig(counted)
	arn := testbed.CreateSecret(t, e.em, "{}")
	testbed.AssertRotationCalls(t, e.em, &calls, arn, func() *rotation.Engine { return e.engine(cfg, sm, k) }, testbed.CallBudget{
		Warm: map[string]int{"createSecret": 4, "setSecret": 1, "testSecret": 1, "finishSecret": 2},
		Cold: map[string]int{"createSecret": 4, "setSecret": 2, "testSecret": 2, "finishSecret": 3},
		Max:  8,
	})
}
