package rotation_test

import (
	"context"
	"slices"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// stagesTarget records what Versions.Stages showed createSecret.
type stagesTarget struct {
	counterTarget
	seen map[string][]string
}

func (s *stagesTarget) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	st, err := req.Versions.Stages(ctx)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	s.seen = st
	return s.counterTarget.Create(ctx, req)
}

// TestStagesLeaveOutDeprecatedVersions: a target sees only the versions
// that carry a label, as AWS's DescribeSecret lists them, whichever
// emulator runs (moto lists deprecated versions too, with no label). A
// target that walks the versions (iamkey finds the keys they hold) must
// not read one Secrets Manager may already have deleted.
func TestStagesLeaveOutDeprecatedVersions(t *testing.T) {
	em := testbed.Emulator(t)
	ctx := context.Background()
	arn := testbed.CreateSecret(t, em, "v0")
	// v0 and v1 lose every label; v2 becomes AWSPREVIOUS, v3 AWSCURRENT.
	for _, v := range []string{"v1", "v2", "v3"} {
		if _, err := em.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(v)}); err != nil {
			t.Fatal(err)
		}
	}
	target := &stagesTarget{}
	eng := rotation.New(em.SM, target, rotation.Options{TargetType: "counter", Function: "test"})
	token := localrun.NewToken()
	if _, err := em.OpenRotation(ctx, arn, token); err != nil {
		t.Fatal(err)
	}
	ev := events.SecretsManagerSecretRotationEvent{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token}
	if err := eng.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for id, st := range target.seen {
		if len(st) == 0 {
			t.Errorf("version %s is listed with no label", id)
		}
	}
	if len(target.seen) != 3 {
		t.Errorf("createSecret saw %d versions %v, want 3 (AWSPREVIOUS, AWSCURRENT, AWSPENDING)", len(target.seen), target.seen)
	}
	if !slices.Contains(target.seen[token], "AWSPENDING") {
		t.Errorf("the token's version is not listed as AWSPENDING: %v", target.seen)
	}
}
