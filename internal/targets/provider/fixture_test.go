package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/provider"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed/keyprovider"
)

// accountsConfig describes the keyprovider's accounts, whose secret the
// function generates and whose id it chooses: the shape of a message
// broker's users (RabbitMQ's is functions/provider/configs/rabbitmq.json).
const accountsConfig = `{
  "provider": "accounts",
  "base_url": "https://accounts.example",
  "admin": {"fields": ["token"]},
  "key": {"id": "svc-{{secret_hash}}-{{token}}", "generate": {"bytes": 24}},
  "secret": {"key": "password", "id": "username"},
  "create": {"method": "PUT", "path": "/v1/accounts/{{key_id}}", "auth": "admin",
    "headers": {"Authorization": "Bearer {{admin.token}}"}, "json": {"secret": "{{key}}"}, "expect": [201, 204]},
  "test": {"method": "GET", "path": "/v1/whoami", "basic_auth": {"username": "{{key_id}}", "password": "{{key}}"},
    "response": {"id": "/name"}, "sample": {"name": "svc-x"}},
  "revoke": {"method": "DELETE", "path": "/v1/accounts/{{key_id}}", "auth": "admin",
    "headers": {"Authorization": "Bearer {{admin.token}}"}, "expect": [204], "gone": [404]},
  "list": {"method": "GET", "path": "/v1/accounts", "auth": "admin", "headers": {"Authorization": "Bearer {{admin.token}}"},
    "response": {"items": "", "id": "/name", "name": "/name"}, "sample": [{"name": "svc-x"}]}
}`

// fixture is one test's provider, admin secret and function settings.
type fixture struct {
	t        *testing.T
	em       *localrun.Emulator
	awsCfg   aws.Config
	prov     *keyprovider.Provider
	adminARN string
	env      map[string]string
	logs     *testbed.LogBuffer
	// kind is what the configuration rotates at the provider: "key" or
	// "account"; fields are the secret's key and id field names.
	kind              string
	keyField, idField string
	// The provider's side, as the checks see it: the ids of the live keys
	// this test's configuration rotates, whether a key works, and every
	// credential that must never be logged (keys issued, admin secret).
	liveIDs func() []string
	works   func(id, key string) bool
	secrets func() []string

	mu       sync.Mutex
	errors   []string
	seenKeys []string // every key field read, for the leak scans
	arns     []string // the secrets made by newSecret
}

// newSecret makes a secret for this test.
func (f *fixture) newSecret(value string) string {
	arn := testbed.CreateSecret(f.t, f.em, value)
	f.mu.Lock()
	f.arns = append(f.arns, arn)
	f.mu.Unlock()
	return arn
}

// newFixture starts a provider and writes the configuration: "saas" (the
// shipped examplesaas.json) or "accounts" (accountsConfig). Every log line
// and error of the test is scanned, when it ends, for every key the
// provider ever issued and for the admin credential.
func newFixture(t *testing.T, config string, opts keyprovider.Options) *fixture {
	t.Helper()
	opts.Dir = t.TempDir()
	prov, err := keyprovider.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prov.Close)
	f := &fixture{t: t, em: testbed.Emulator(t), awsCfg: testbed.AWSConfig(t), prov: prov, logs: &testbed.LogBuffer{}}
	admin, _ := json.Marshal(map[string]string{"token": prov.AdminToken, "note": "admin credential of the test provider"})
	f.adminARN = testbed.CreateSecret(t, f.em, string(admin))
	f.env = map[string]string{
		"PROVIDER_BASE_URL": prov.URL,
		"PROVIDER_CA_FILE":  prov.CAFile,
		"ADMIN_SECRET_ID":   f.adminARN,
	}
	switch config {
	case "saas":
		f.env["PROVIDER_CONFIG_FILE"] = filepath.Join(testbed.ModuleRoot(t), "functions", "provider", "configs", "examplesaas.json")
		f.kind, f.keyField, f.idField = "key", "apiKey", "keyId"
	case "accounts":
		f.env["PROVIDER_CONFIG"] = accountsConfig
		f.kind, f.keyField, f.idField = "account", "password", "username"
	default:
		t.Fatalf("no configuration %q", config)
	}
	f.liveIDs = func() []string {
		var ids []string
		for _, k := range prov.Keys() {
			if k.Kind == f.kind {
				ids = append(ids, k.ID)
			}
		}
		return ids
	}
	f.works = func(_, key string) bool { return prov.Valid(key) }
	f.secrets = func() []string { return append(prov.Issued(), prov.AdminToken) }
	t.Cleanup(f.scanForLeaks)
	return f
}

func (f *fixture) config() provider.Config {
	f.t.Helper()
	c, err := provider.ConfigFromEnv(func(k string) string { return f.env[k] })
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// engine returns a fresh function instance: nothing remembered.
func (f *fixture) engine(opts ...provider.Option) *rotation.Engine {
	return f.engineWith(f.awsCfg, opts...)
}

func (f *fixture) engineWith(awsCfg aws.Config, opts ...provider.Option) *rotation.Engine {
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return rotation.New(secretsmanager.NewFromConfig(awsCfg), provider.New(f.config(), awsCfg, opts...),
		rotation.Options{TargetType: "provider", Function: "provider-test", Logger: log, MetricsNamespace: "SecretsRotation"})
}

// invoke runs one step and records its error for the leak scan.
func (f *fixture) invoke(e *rotation.Engine, step, arn, token string) error {
	err := e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
	if err != nil {
		f.mu.Lock()
		f.errors = append(f.errors, err.Error())
		f.mu.Unlock()
	}
	return err
}

// rotate runs a whole rotation with fresh instances and fails the test if
// it fails.
func (f *fixture) rotate(arn string) string {
	f.t.Helper()
	token, err := f.tryRotate(arn)
	if err != nil {
		f.t.Fatalf("rotation: %v", err)
	}
	return token
}

func (f *fixture) tryRotate(arn string) (string, error) {
	e := f.engine()
	res, err := f.em.Rotate(context.Background(), arn, localrun.InvokerFunc(func(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
		return f.invoke(e, ev.Step, ev.SecretID, ev.ClientRequestToken)
	}), localrun.Options{Attempts: 1})
	return res.Token, err
}

func (f *fixture) open(arn string) string {
	f.t.Helper()
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		f.t.Fatal(err)
	}
	return token
}

// field reads a string field of the version at stage.
func (f *fixture) field(arn, stage, name string) string {
	f.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(testbed.ValueAt(f.t, f.em, arn, stage)), &m); err != nil {
		f.t.Fatal(err)
	}
	s, _ := m[name].(string)
	if name == f.keyField && s != "" {
		f.mu.Lock()
		f.seenKeys = append(f.seenKeys, s)
		f.mu.Unlock()
	}
	return s
}

// live returns the ids of the provider's live keys (or accounts).
func (f *fixture) live() []string {
	ids := f.liveIDs()
	sort.Strings(ids)
	return ids
}

// currentWorks reports whether the key of the version at stage works at
// the provider.
func (f *fixture) keyWorks(arn, stage string) bool {
	return f.works(f.field(arn, stage, f.idField), f.field(arn, stage, f.keyField))
}

// wantLive fails unless the provider holds exactly ids (empty ones
// ignored): no orphan, no duplicate.
func (f *fixture) wantLive(what string, ids ...string) {
	f.t.Helper()
	var want []string
	for _, id := range ids {
		if id != "" {
			want = append(want, id)
		}
	}
	sort.Strings(want)
	if got := f.live(); !slices.Equal(got, want) {
		f.t.Fatalf("%s: the provider holds %v, want exactly %v", what, got, want)
	}
}

// scanForLeaks fails the test if any key the provider issued, or the admin
// credential, appears in a log line or an error.
func (f *fixture) scanForLeaks() {
	out := f.logs.String()
	f.mu.Lock()
	out += strings.Join(f.errors, "\n")
	f.mu.Unlock()
	secrets := f.secrets()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			f.t.Errorf("a key or the admin credential appears in the logs or errors")
			return
		}
	}
	if len(secrets) < 2 {
		return
	}
	// The scan is not vacuous: the logs exist and name key ids.
	if !strings.Contains(out, `"provider"`) {
		f.t.Errorf("no log line of the provider target was captured")
	}
}

func isCrash(err error) bool { return errors.Is(err, testbed.ErrCrash) }
