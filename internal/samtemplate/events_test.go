package samtemplate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// settings gives each function the least configuration it needs to start,
// so that its sample events reach the protocol engine rather than a
// configuration error. The values name resources that do not exist: the
// events' example secret does not exist either.
var settings = map[string][]string{
	"datakey": {"KMS_KEY_ID=arn:aws:kms:us-east-1:000000000000:key/00000000-0000-0000-0000-000000000000"},
	"tlscert": {"CA_SECRET_ID=arn:aws:secretsmanager:us-east-1:000000000000:secret:example-ca-AbCdEf", "ALLOWED_DNS_SUFFIXES=example.com"},
}

// idleSteps are the steps a function has nothing to do for in the
// configuration above (rotation.Idler): they make no call and succeed.
var idleSteps = map[string][]string{
	"generic": {"setSecret", "testSecret"},
}

// The provider function starts from a configuration shipped with it, read
// by absolute path (the function under the emulator does not run in this
// directory); examplesaas.json has no activate request, so setSecret is idle.
func init() {
	cfg, _ := filepath.Abs(filepath.Join(root, "functions", "provider", "configs", "examplesaas.json"))
	settings["provider"] = []string{"PROVIDER_CONFIG_FILE=" + cfg, "ADMIN_SECRET_ID=arn:aws:secretsmanager:us-east-1:000000000000:secret:example-admin-AbCdEf"}
	idleSteps["provider"] = []string{"setSecret"}
}

// TestEachFunctionAnswersItsSampleEvents builds every function of
// functions/ (for this machine, with the Lambda build flags), runs it under
// the Runtime Interface Emulator and invokes it with each of its sample
// events: every answer must be the engine's StepError for that step, naming
// the example secret that the emulator does not hold — except for a step
// the function has nothing to do for, which succeeds without a call.
func TestEachFunctionAnswersItsSampleEvents(t *testing.T) {
	dirs, err := os.ReadDir(filepath.Join(testbed.ModuleRoot(t), "functions"))
	if err != nil {
		t.Fatal(err)
	}
	testbed.AWSConfig(t) // fail early, with the hint, without a test bed
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		name := d.Name()
		if _, ok := notRotation[name]; ok {
			continue // no rotation events; functions/auditor's own test invokes its sample event
		}
		t.Run(name, func(t *testing.T) {
			evs := testbed.SampleEvents(t, name)
			rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
				Binary:    testbed.RIEBinary(t),
				Bootstrap: testbed.BuildFunction(t, name),
				Env:       settings[name],
			})
			if err != nil {
				t.Fatal(err)
			}
			defer rie.Close()
			for _, ev := range evs {
				err := rie.Invoke(context.Background(), ev)
				if slices.Contains(idleSteps[name], ev.Step) {
					if err != nil {
						t.Errorf("%s: answer %v, want success (the step has nothing to do)", ev.Step, err)
					}
					continue
				}
				var fe *localrun.FunctionError
				if !errors.As(err, &fe) || fe.Type != "StepError" {
					t.Errorf("%s: answer %v, want a StepError", ev.Step, err)
					continue
				}
				if !strings.HasPrefix(fe.Message, ev.Step+" ") || !strings.Contains(fe.Message, "ResourceNotFoundException") || !strings.Contains(fe.Message, ev.SecretID) {
					t.Errorf("%s: %q does not name the step and the missing example secret", ev.Step, fe.Message)
				}
			}
		})
	}
}
