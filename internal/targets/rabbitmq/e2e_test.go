package rabbitmq_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestEndToEndUnderRIE builds functions/rabbitmq, runs it under the Lambda
// Runtime Interface Emulator with RABBITMQ_CA_BUNDLE set, and rotates a
// secret of each strategy twice through it: AWSCURRENT logs in over AMQP
// after each rotation, and no password appears in the function's output.
func TestEndToEndUnderRIE(t *testing.T) {
	b := newBed(t)
	for _, single := range []bool{false, true} {
		name := map[bool]string{false: "alternating users", true: "single user"}[single]
		t.Run(name, func(t *testing.T) {
			masterARN, _, _ := b.master(t, testbed.Emulator(t))
			user, pw := b.user(t, "e2e_")
			extra := map[string]any{"masterarn": masterARN}
			if single {
				extra["strategy"] = "single-user"
			}
			dbtest.RotateUnderRIEWithEnv(t, "rabbitmq", []string{"RABBITMQ_CA_BUNDLE=" + b.CAFile}, b.secret(user, pw, extra), b.login)
		})
	}
}
