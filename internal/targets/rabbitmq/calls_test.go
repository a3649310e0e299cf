package rabbitmq_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The Secrets Manager calls of a RabbitMQ rotation, per step, the master
// secret's read included (issue 14). Beside the engine's own (createSecret
// 4, testSecret 0 (the pending value is known from createSecret), finishSecret 2, and DescribeSecret with the pending
// version's read in setSecret), setSecret reads the master secret, which
// every RabbitMQ rotation needs (only an administrator sets passwords),
// and with alternating users AWSPREVIOUS, whose login proves that the
// secret controls the idle user before the master user changes it: warm,
// 9 calls alternating and 8 single user, the databases' counts. Cold (a fresh instance per step), the later steps read
// AWSCURRENT and AWSPENDING again.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	b := newBed(t)
	for _, c := range []struct {
		name   string
		single bool
		budget testbed.CallBudget
	}{{
		name: "alternating users",
		budget: testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 3, "testSecret": 0, "finishSecret": 2},
			Cold: map[string]int{"createSecret": 4, "setSecret": 5, "testSecret": 1, "finishSecret": 3},
			Max:  9,
		},
	}, {
		name: "single user", single: true,
		budget: testbed.CallBudget{
			Warm: map[string]int{"createSecret": 4, "setSecret": 2, "testSecret": 0, "finishSecret": 2},
			Cold: map[string]int{"createSecret": 4, "setSecret": 4, "testSecret": 1, "finishSecret": 3},
			Max:  8,
		},
	}} {
		t.Run(c.name, func(t *testing.T) {
			var calls testbed.Calls
			sm := secretsmanager.NewFromConfig(calls.Config(awsConfig(t)))
			h := dbtest.NewHarness(t, rabbitmq.New(b.config(nil), rabbitmq.Driver{}, sm))
			arn, _, _ := b.rotated(t, h.Em, "calls_", c.single)
			testbed.AssertRotationCalls(t, h.Em, &calls, arn, func() *rotation.Engine { return h.NewEngine(sm) }, c.budget)
		})
	}
}
