// Package dbtest connects the database rotation tests to the servers that
// scripts/testbed.sh starts (it writes .testbed/db.env) and to the AWS emulator.
// It holds no fake: every call goes to a real server.
package dbtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

const hint = testbed.Hint

// Settings returns the variables of .testbed/db.env.
func Settings(t testing.TB) map[string]string {
	t.Helper()
	file := filepath.Join(testbed.ModuleRoot(t), ".testbed", "db.env")
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("read %s: %v: %s", file, err, hint)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TargetConfig is the configuration of an empty environment, except that
// the test CA is the function's DB_CA_BUNDLE: the tests' secrets name no
// ca_bundle, as a deployment's should not.
func TargetConfig(t testing.TB) dbtarget.Config {
	t.Helper()
	cfg := dbtarget.DefaultConfig()
	cfg.CABundle = Settings(t)["DB_CA_FILE"]
	return cfg
}

// Name returns a fresh lower-case name with prefix, for users and secrets
// that must not collide between tests.
func Name(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Password returns a random password of 24 hex characters.
func Password() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SecretJSON encodes fields as a secret value.
func SecretJSON(t testing.TB, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withExtra sets the fields of extra in m, and deletes those whose value
// is nil, and returns m.
func withExtra(m, extra map[string]any) map[string]any {
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// Harness runs rotations of a target in-process through the engine, against
// the emulator, and keeps every log line the engine and target wrote.
type Harness struct {
	T      testing.TB
	Em     *localrun.Emulator
	Target rotation.Target
	logs   testbed.LogBuffer
	Engine *rotation.Engine
}

// NewHarness returns a Harness for target.
func NewHarness(t testing.TB, target rotation.Target) *Harness {
	h := &Harness{T: t, Em: testbed.Emulator(t), Target: target}
	h.Engine = h.NewEngine(h.Em.SM)
	return h
}

// NewEngine returns an engine over api (a crashing client, say) that logs
// into the harness.
func (h *Harness) NewEngine(api *secretsmanager.Client) *rotation.Engine {
	return rotation.New(api, h.Target, h.options())
}

// options are the engine options of the harness: its logs are kept.
func (h *Harness) options() rotation.Options {
	return rotation.Options{
		TargetType: "db-test", Function: "test",
		Logger: slog.New(slog.NewJSONHandler(&h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// Logs returns everything logged so far.
func (h *Harness) Logs() string {
	return h.logs.String()
}

// Rotate runs one whole rotation and returns its result.
func (h *Harness) Rotate(arn string) (localrun.Result, error) {
	return h.Em.Rotate(context.Background(), arn, localrun.InvokerFunc(h.Engine.Handle), localrun.Options{Attempts: 1})
}

// Open opens a rotation and returns its token.
func (h *Harness) Open(arn string) string {
	h.T.Helper()
	token := localrun.NewToken()
	if _, err := h.Em.OpenRotation(context.Background(), arn, token); err != nil {
		h.T.Fatal(err)
	}
	return token
}

// Step runs one step of the rotation token through e (the harness's engine
// when nil).
func (h *Harness) Step(e *rotation.Engine, step, arn, token string) error {
	return h.StepContext(context.Background(), e, step, arn, token)
}

// StepContext is Step under ctx (a deadline, as Lambda gives one).
func (h *Harness) StepContext(ctx context.Context, e *rotation.Engine, step, arn, token string) error {
	if e == nil {
		e = h.Engine
	}
	return e.Handle(ctx, events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
}

// Current returns the parsed AWSCURRENT value.
func (h *Harness) Current(arn string) *dbsecret.Secret {
	h.T.Helper()
	return h.At(arn, "AWSCURRENT")
}

// At returns the parsed value that carries stage.
func (h *Harness) At(arn, stage string) *dbsecret.Secret {
	h.T.Helper()
	s, err := dbsecret.Parse(testbed.ValueAt(h.T, h.Em, arn, stage), dbsecret.Defaults{})
	if err != nil {
		h.T.Fatal(err)
	}
	return s
}

// AssertNoSecretInLogs fails when any of the values appears in the logs.
func (h *Harness) AssertNoSecretInLogs(values ...string) {
	h.T.Helper()
	logs := h.Logs()
	for _, v := range values {
		if len(v) >= 6 && strings.Contains(logs, v) {
			h.T.Fatalf("a secret value appears in the logs")
		}
	}
}
