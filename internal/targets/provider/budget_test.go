package provider_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed/keyprovider"
)

// TestSecretsManagerCallsPerRotation counts the Secrets Manager calls of a
// whole rotation, per step, the admin secret's read included, and the
// provider requests; docs/provider.md's table comes from it. The rotation
// is the third of its secret, so finishSecret has a key to revoke. "warm":
// one instance runs the four steps; "cold": each step a fresh one.
//
// Where the calls go: createSecret reads the token's version (it must have
// no value yet), AWSCURRENT (the current key and fields) and the admin
// secret, then stores the new version; finishSecret needs DescribeSecret
// (the current version's id), the move, the admin secret and, cold, the
// two versions whose keys it compares with the provider's list.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	for _, c := range []struct {
		name, config string
		cold         bool
		want         map[string]int
		budget       int
		requests     map[string]int // provider requests per step
	}{
		{"saas warm", "saas", false, map[string]int{"createSecret": 5, "setSecret": 0, "testSecret": 0, "finishSecret": 3}, 8,
			map[string]int{"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 2}},
		{"saas cold", "saas", true, map[string]int{"createSecret": 5, "setSecret": 0, "testSecret": 1, "finishSecret": 5}, 11,
			map[string]int{"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 2}},
		{"accounts warm", "accounts", false, map[string]int{"createSecret": 5, "setSecret": 0, "testSecret": 0, "finishSecret": 3}, 8,
			map[string]int{"createSecret": 2, "setSecret": 0, "testSecret": 1, "finishSecret": 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.config, keyprovider.Options{})
			arn := testbed.CreateSecret(t, f.em, `{}`)
			f.rotate(arn)
			f.rotate(arn)
			var calls testbed.Calls
			awsCfg := calls.Config(f.awsCfg)
			warm := f.engineWith(awsCfg)
			token := f.open(arn)
			requests := map[string]int{}
			got := testbed.StepCalls(t, &calls, localrun.Steps, func(step string) error {
				e := warm
				if c.cold {
					e = f.engineWith(awsCfg)
				}
				before := len(f.prov.Requests())
				err := e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
				requests[step] = len(f.prov.Requests()) - before
				return err
			})
			testbed.AssertCalls(t, "provider "+c.name, got, c.want, c.budget)
			for step, n := range c.requests {
				if requests[step] != n {
					t.Errorf("%s made %d provider requests, want %d", step, requests[step], n)
				}
			}
			if testbed.ValueOf(t, f.em, arn, token) != testbed.ValueAt(t, f.em, arn, "AWSCURRENT") {
				t.Error("the rotation did not end with the new version current")
			}
		})
	}
}

// The admin secret is read with the function's own client: a function
// whose admin secret does not exist fails with an error that names it, and
// changes nothing.
func TestMissingAdminSecret(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	f.env["ADMIN_SECRET_ID"] = f.adminARN + "-gone"
	arn := testbed.CreateSecret(t, f.em, `{}`)
	token := f.open(arn)
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	if err == nil || !strings.Contains(err.Error(), "admin secret") || !strings.Contains(err.Error(), "-gone") {
		t.Fatalf("error %v, want one naming the admin secret", err)
	}
	if _, err := f.em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: &arn, VersionId: &token}); err == nil {
		t.Error("a pending value was stored")
	}
	f.wantLive("without the admin secret")
}
