package jwtkeys_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The Secrets Manager calls of a jwtkeys rotation, per step (issue 14's
// budget: at most 8). testSecret reads AWSCURRENT to check that the pending
// JWKS still publishes the current key, so tokens signed with it keep
// verifying.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	e := newEnv(t)
	cfg := config(t, nil)
	var calls testbed.Calls
	sm := secretsmanager.NewFromConfig(calls.Config(e.cfg))
	arn := testbed.CreateSecret(t, e.em, "{}")
	testbed.AssertRotationCalls(t, e.em, &calls, arn, func() *rotation.Engine { return e.engine(cfg, sm) }, testbed.CallBudget{
		Warm: map[string]int{"createSecret": 4, "setSecret": 1, "testSecret": 1, "finishSecret": 2},
		Cold: map[string]int{"createSecret": 4, "setSecret": 2, "testSecret": 2, "finishSecret": 3},
		Max:  8,
	})
}
