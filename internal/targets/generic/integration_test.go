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
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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

// The Secrets Manager calls of a whole generic rotation, per step; the
// README's table of calls per step comes from this test. "warm": one
// function instance runs the four steps, as Lambda does when Secrets
// Manager invokes them one after the other; "cold": every step runs in a
// fresh instance and finds nothing remembered.
func TestSecretsManagerCallsPerRotation(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    map[string]string
		cold   bool
		want   map[string]int
		budget int
	}{
		{"warm", nil, false, map[string]int{"createSecret": 4, "setSecret": 0, "testSecret": 0, "finishSecret": 2}, 6},
		{"cold", nil, true, map[string]int{"createSecret": 4, "setSecret": 0, "testSecret": 0, "finishSecret": 3}, 7},
		{"warm, VERIFY_URL", map[string]string{"VERIFY_URL": "https://127.0.0.1:1/verify"}, false, map[string]int{"createSecret": 4, "setSecret": 0, "testSecret": 0, "finishSecret": 2}, 6},
		{"cold, VERIFY_URL", map[string]string{"VERIFY_URL": "https://127.0.0.1:1/verify"}, true, map[string]int{"createSecret": 4, "setSecret": 0, "testSecret": 1, "finishSecret": 3}, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range c.env {
				env[k] = v
			}
			var verified []string
			if env["VERIFY_URL"] != "" {
				srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					verified = append(verified, r.Header.Get("Authorization"))
				}))
				defer srv.Close()
				env["VERIFY_URL"] = srv.URL + "/verify"
				env["VERIFY_CA_FILE"] = writeServerCA(t, srv)
			}
			cfg, err := generic.ConfigFromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			em := testbed.Emulator(t)
			var calls testbed.Calls
			api := secretsmanager.NewFromConfig(calls.Config(testbed.AWSConfig(t)))
			engine := func() *rotation.Engine {
				return rotation.New(api, generic.New(cfg), rotation.Options{TargetType: "generic", Logger: slog.New(slog.DiscardHandler)})
			}
			warm := engine()
			arn := testbed.CreateSecret(t, em, "initial-password")
			token := localrun.NewToken()
			if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
				t.Fatal(err)
			}
			got := testbed.StepCalls(t, &calls, localrun.Steps, func(step string) error {
				e := warm
				if c.cold {
					e = engine()
				}
				return e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
			})
			testbed.AssertCalls(t, "generic "+c.name, got, c.want, c.budget)
			if testbed.ValueOf(t, em, arn, token) != testbed.ValueAt(t, em, arn, "AWSCURRENT") {
				t.Errorf("the rotation did not end with the new version current")
			}
			if env["VERIFY_URL"] != "" && len(verified) != 1 {
				t.Errorf("the verification endpoint was called %d times, want 1", len(verified))
			}
		})
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
	caFile := writeServerCA(t, srv)
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

// writeServerCA writes the test server's certificate to a PEM file, for
// VERIFY_CA_FILE.
func writeServerCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile
}
