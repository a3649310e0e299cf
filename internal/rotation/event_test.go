package rotation

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func TestValidateEvent(t *testing.T) {
	ok := events.SecretsManagerSecretRotationEvent{Step: StepCreate, SecretID: "arn", ClientRequestToken: "t"}
	if err := validateEvent(ok); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
	cases := []struct {
		ev      events.SecretsManagerSecretRotationEvent
		want    error
		mention string
	}{
		{events.SecretsManagerSecretRotationEvent{}, ErrMalformedEvent, "Step SecretId ClientRequestToken"},
		{events.SecretsManagerSecretRotationEvent{Step: StepSet, SecretID: "arn"}, ErrMalformedEvent, "ClientRequestToken"},
		{events.SecretsManagerSecretRotationEvent{Step: "deleteSecret", SecretID: "arn", ClientRequestToken: "t"}, ErrUnknownStep, "deleteSecret"},
		{events.SecretsManagerSecretRotationEvent{Step: "createsecret", SecretID: "arn", ClientRequestToken: "t"}, ErrUnknownStep, "createsecret"},
	}
	for _, c := range cases {
		err := validateEvent(c.ev)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%+v: error %v, want %v naming %q", c.ev, err, c.want, c.mention)
		}
	}
}

func TestStepErrorNamesStepSecretAndCause(t *testing.T) {
	cause := errors.New("boom")
	err := error(&StepError{Step: StepTest, Secret: "arn:x", Err: cause})
	if err.Error() != "testSecret arn:x: boom" || !errors.Is(err, cause) {
		t.Errorf("StepError %q does not read or unwrap as expected", err)
	}
}
