package datakey_test

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/datakey"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t    *testing.T
	em   *localrun.Emulator
	kms  *kms.Client
	cfg  aws.Config
	logs *testbed.LogBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testbed.AWSConfig(t)
	return &env{t: t, em: localrun.NewEmulator(cfg), kms: kms.NewFromConfig(cfg), cfg: cfg, logs: &testbed.LogBuffer{}}
}

// newKMSKey creates a KMS key and schedules its deletion when the test ends.
func (e *env) newKMSKey(spec kmstypes.KeySpec, usage kmstypes.KeyUsageType) string {
	e.t.Helper()
	out, err := e.kms.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage})
	if err != nil {
		e.t.Fatalf("create KMS key: %v", err)
	}
	arn, id := aws.ToString(out.KeyMetadata.Arn), out.KeyMetadata.KeyId
	// By key id: moto 5.2.1 answers 500 to ScheduleKeyDeletion and
	// DisableKey given a key ARN.
	e.t.Cleanup(func() {
		_, _ = e.kms.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
	})
	return arn
}

func (e *env) symmetricKey() string {
	return e.newKMSKey(kmstypes.KeySpecSymmetricDefault, kmstypes.KeyUsageTypeEncryptDecrypt)
}

func (e *env) config(keyID string, extra map[string]string) datakey.Config {
	e.t.Helper()
	m := map[string]string{"KMS_KEY_ID": keyID}
	for k, v := range extra {
		m[k] = v
	}
	cfg, err := datakey.ConfigFromEnv(func(k string) string { return m[k] })
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

func (e *env) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (e *env) engine(cfg datakey.Config, sm *secretsmanager.Client, k *kms.Client) *rotation.Engine {
	return rotation.New(sm, datakey.New(cfg, k), rotation.Options{TargetType: "datakey", Function: "test", Logger: e.logger()})
}

// rotate runs one whole rotation through the local runner.
func (e *env) rotate(arn string, cfg datakey.Config) localrun.Result {
	e.t.Helper()
	eng := e.engine(cfg, e.em.SM, e.kms)
	res, err := e.em.Rotate(context.Background(), arn, localrun.InvokerFunc(eng.Handle), localrun.Options{Attempts: 1})
	if err != nil {
		e.t.Fatalf("rotate: %v", err)
	}
	return res
}

func (e *env) doc(arn, stage string) keyring.Document {
	e.t.Helper()
	d, err := keyring.ParseDocument(testbed.ValueAt(e.t, e.em, arn, stage))
	if err != nil {
		e.t.Fatalf("%s: %v", stage, err)
	}
	return d
}

func (e *env) stages(arn string) map[string][]string {
	e.t.Helper()
	s, err := e.em.Stages(context.Background(), arn)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) keyring(arn string, now func() time.Time) *keyring.Keyring {
	e.t.Helper()
	kr, err := keyring.New(keyring.Options{SecretID: arn, Secrets: e.em.SM, KMS: e.kms, MinRefresh: time.Nanosecond, Now: now})
	if err != nil {
		e.t.Fatal(err)
	}
	return kr
}

func (e *env) rotationStatus(keyARN string) bool {
	e.t.Helper()
	st, err := e.kms.GetKeyRotationStatus(context.Background(), &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyARN)})
	if err != nil {
		e.t.Fatal(err)
	}
	return st.KeyRotationEnabled
}

func hasStage(st map[string][]string, id, stage string) bool {
	return slices.Contains(st[id], stage)
}

func kids(keys []keyring.Key) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

func secretVersion(arn, id string) *secretsmanager.GetSecretValueInput {
	return &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)}
}
