package testbed

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

// SampleEvents reads events/<function>, the sample event of each rotation
// step (createSecret.json ... finishSecret.json), and returns them in step
// order. It fails the test unless each file is a well-formed event of its
// step and all carry one token, as the events of one rotation do.
func SampleEvents(t testing.TB, function string) []events.SecretsManagerSecretRotationEvent {
	t.Helper()
	var evs []events.SecretsManagerSecretRotationEvent
	var token string
	for _, step := range localrun.Steps {
		b, err := os.ReadFile(filepath.Join(ModuleRoot(t), "events", function, step+".json"))
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
		evs = append(evs, ev)
	}
	return evs
}
