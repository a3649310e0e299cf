package generic_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"encoding/pem"

	"github.com/aws/aws-lambda-go/events"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/generic"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func engineFor(t *testing.T, env map[string]string, logs *bytes.Buffer) (*rotation.Engine, *localrun.Emulator) {
	t.Helper()
	cfg, err := generic.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	em := testbed.Emulator(t)
	return rotation.New(em.SM, generic.New(cfg), rotation.Options{
		TargetType: "generic",
		Logger:     slog.New(slog.NewJSONHandler(logs, nil)),
	}), em
}

func rotate(t *testing.T, em *localrun.Emulator, e *rotation.Engine, arn string) (localrun.Result, error) {
	t.Helper()
	return em.Rotate(context.Background(), arn, localrun.InvokerFunc(e.Handle), localrun.Options{Attempts: 1})
}

func TestJSONSecretKeepsItsOtherFields(t *testing.T) {
	var logs bytes.Buffer
	e, em := engineFor(t, map[string]string{"SECRET_KIND": "apikey", "SECRET_FIELD": "api_key", "KEY_PREFIX": "sk_live_"}, &logs)
	orig := `{"user": "svc-billing", "api_key": "sk_live_old", "limits": {"rps": 1.50, "burst": [1, 2]}}`
	arn := testbed.CreateSecret(t, em, orig)
	if _, err := rotate(t, em, e, arn); err != nil {
		t.Fatal(err)
	}
	got := testbed.ValueAt(t, em, arn, "AWSCURRENT")
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(got), &doc); err != nil {
		t.Fatalf("rotated value is not JSON: %v", err)
	}
	if string(doc["user"]) != `"svc-billing"` || string(doc["limits"]) != `{"rps": 1.50, "burst": [1, 2]}` {
		t.Errorf("other fields changed: user=%s limits=%s", doc["user"], doc["limits"])
	}
	var key string
	_ = json.Unmarshal(doc["api_key"], &key)
	if !strings.HasPrefix(key, "sk_live_") || key == "sk_live_old" || len(key) != len("sk_live_")+43 {
		t.Errorf("api_key was not replaced by a new sk_live_ key of 32 bytes")
	}
	if testbed.ValueAt(t, em, arn, "AWSPREVIOUS") != orig {
		t.Errorf("AWSPREVIOUS is not the original value")
	}
	if strings.Contains(logs.String(), key) || strings.Contains(logs.String(), "sk_live_old") {
		t.Errorf("a secret value appears in the logs")
	}
}

// A whole generic rotation costs at most 8 Secrets Manager calls; the
// README's table of calls per step comes from this test.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	var logs bytes.Buffer
	e, em := engineFor(t, map[string]string{}, &logs)
	arn := testbed.CreateSecret(t, em, "initial-password")
	if _, err := rotate(t, em, e, arn); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"createSecret": 4, "setSecret": 1, "testSecret": 1, "finishSecret": 2}
	total := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg   string `json:"msg"`
			Step  string `json:"step"`
			Calls int    `json:"secretsmanager_calls"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v", err)
		}
		if rec.Msg != "rotation step done" {
			continue
		}
		if rec.Calls != want[rec.Step] {
			t.Errorf("%s made %d Secrets Manager calls, want %d", rec.Step, rec.Calls, want[rec.Step])
		}
		total += rec.Calls
	}
	if total != 8 {
		t.Errorf("a rotation made %d Secrets Manager calls, want 8", total)
	}
}

func TestBadInputLeavesTheSecretUntouched(t *testing.T) {
	var logs bytes.Buffer
	e, em := engineFor(t, map[string]string{"SECRET_FIELD": "password"}, &logs)
	arn := testbed.CreateSecret(t, em, "plain, not JSON")
	token := localrun.NewToken()
	if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	before, _ := em.Stages(context.Background(), arn)
	err := e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: "createSecret", SecretID: arn, ClientRequestToken: token})
	if err == nil || !strings.Contains(err.Error(), "not a JSON object") || !strings.Contains(err.Error(), "SECRET_FIELD=password") || !strings.Contains(err.Error(), "createSecret") {
		t.Fatalf("error %v does not name the step and the problem", err)
	}
	if strings.Contains(err.Error(), "plain, not JSON") {
		t.Errorf("error contains the secret value")
	}
	after, _ := em.Stages(context.Background(), arn)
	if len(after) != len(before) || testbed.ValueAt(t, em, arn, "AWSCURRENT") != "plain, not JSON" {
		t.Errorf("the secret changed: %v -> %v", before, after)
	}
}

func TestVerificationEndpointGatesTheRotation(t *testing.T) {
	var mu sync.Mutex
	accept := false
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Header.Get("X-Api-Key"))
		if !accept {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	e, em := engineFor(t, map[string]string{
		"SECRET_KIND": "apikey", "VERIFY_URL": srv.URL + "/check", "VERIFY_HEADER": "X-Api-Key", "VERIFY_CA_FILE": caFile,
	}, &logs)
	arn := testbed.CreateSecret(t, em, "key-0")

	// The endpoint refuses: the rotation stops at testSecret and AWSCURRENT
	// does not move.
	res, err := rotate(t, em, e, arn)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("rotation against a refusing endpoint: %v", err)
	}
	if testbed.ValueAt(t, em, arn, "AWSCURRENT") != "key-0" {
		t.Fatal("AWSCURRENT moved although the endpoint refused the pending value")
	}
	pending := testbed.ValueOf(t, em, arn, res.Token)
	mu.Lock()
	if len(seen) != 1 || seen[0] != pending {
		t.Errorf("the endpoint did not receive the pending value in X-Api-Key")
	}
	accept = true
	mu.Unlock()

	// Secrets Manager retries the rotation with the same token: now it ends.
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		if err := e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: res.Token}); err != nil {
			t.Fatalf("retry %s: %v", step, err)
		}
	}
	if testbed.ValueAt(t, em, arn, "AWSCURRENT") != pending {
		t.Error("after the retry AWSCURRENT is not the value the endpoint accepted")
	}
	if strings.Contains(logs.String(), pending) {
		t.Error("the pending value appears in the logs")
	}
}
