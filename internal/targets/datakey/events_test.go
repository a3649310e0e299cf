package datakey_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSampleEvents checks that events/datakey holds one well-formed sample
// event per step, all of one rotation.
func TestSampleEvents(t *testing.T) {
	checkSampleEvents(t, "datakey")
}

func checkSampleEvents(t *testing.T, name string) {
	var token string
	for _, step := range localrun.Steps {
		b, err := os.ReadFile(filepath.Join(testbed.ModuleRoot(t), "events", name, step+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var ev events.SecretsManagerSecretRotationEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if ev.Step != step || ev.SecretID == "" || ev.ClientRequestToken == "" || (token != "" && ev.ClientRequestToken != token) {
			t.Fatalf("%s.json: %+v", step, ev)
		}
		token = ev.ClientRequestToken
	}
}
