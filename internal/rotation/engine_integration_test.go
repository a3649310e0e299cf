package rotation_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// counterTarget derives "<current>+<n>" and counts how often it was asked,
// so that a test can tell a kept value from a second one.
type counterTarget struct {
	mu      sync.Mutex
	creates int
	sets    int
	tests   int
}

func (c *counterTarget) Create(_ context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creates++
	return rotation.CreateResponse{Value: fmt.Sprintf("%s+%d", req.Current.Value, c.creates)}, nil
}

func (c *counterTarget) Set(ctx context.Context, req *rotation.StepRequest) error {
	c.mu.Lock()
	c.sets++
	c.mu.Unlock()
	_, err := req.Versions.Pending(ctx)
	return err
}

func (c *counterTarget) Test(ctx context.Context, req *rotation.StepRequest) error {
	c.mu.Lock()
	c.tests++
	c.mu.Unlock()
	_, err := req.Versions.Pending(ctx)
	return err
}

type fixture struct {
	t      *testing.T
	em     *localrun.Emulator
	target *counterTarget
	logs   *bytes.Buffer
	engine *rotation.Engine
}

func newFixture(t *testing.T) *fixture {
	em := testbed.Emulator(t)
	f := &fixture{t: t, em: em, target: &counterTarget{}, logs: &bytes.Buffer{}}
	f.engine = f.newEngine(em.SM)
	return f
}

func (f *fixture) newEngine(api *secretsmanager.Client) *rotation.Engine {
	return rotation.New(api, f.target, rotation.Options{
		TargetType: "counter",
		Function:   "test",
		Logger:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

func (f *fixture) invoke(e *rotation.Engine, step, secret, token string) error {
	return e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{
		Step: step, SecretID: secret, ClientRequestToken: token,
	})
}

func (f *fixture) open(arn string) string {
	f.t.Helper()
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		f.t.Fatal(err)
	}
	return token
}

func (f *fixture) stages(arn string) map[string][]string {
	f.t.Helper()
	s, err := f.em.Stages(context.Background(), arn)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) rotate(arn string) string {
	f.t.Helper()
	token := f.open(arn)
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine, step, arn, token); err != nil {
			f.t.Fatalf("%s: %v", step, err)
		}
	}
	if err := f.em.CloseRotation(context.Background(), arn, token); err != nil {
		f.t.Fatal(err)
	}
	return token
}

func currentID(t *testing.T, stages map[string][]string) string {
	t.Helper()
	for id, s := range stages {
		if slices.Contains(s, "AWSCURRENT") {
			return id
		}
	}
	t.Fatalf("no AWSCURRENT in %v", stages)
	return ""
}

// assertRotated checks the end state of one finished rotation from the
// version old to the version token.
func assertRotated(t *testing.T, f *fixture, arn, old, token, oldValue string) {
	t.Helper()
	st := f.stages(arn)
	if !slices.Contains(st[token], "AWSCURRENT") {
		t.Errorf("token %s has stages %v, want AWSCURRENT", token, st[token])
	}
	if !slices.Equal(st[old], []string{"AWSPREVIOUS"}) {
		t.Errorf("old version %s has stages %v, want [AWSPREVIOUS]", old, st[old])
	}
	if got := testbed.ValueOf(t, f.em, arn, old); got != oldValue {
		t.Errorf("old version value changed")
	}
	if got := testbed.ValueAt(t, f.em, arn, "AWSCURRENT"); got == oldValue || !strings.HasPrefix(got, oldValue+"+") {
		t.Errorf("AWSCURRENT is not a value derived from the old one")
	}
}

func TestFullRotation(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	old := currentID(t, f.stages(arn))
	token := f.rotate(arn)
	assertRotated(t, f, arn, old, token, "v0")
	if got := testbed.ValueOf(t, f.em, arn, token); got != "v0+1" {
		t.Errorf("new value %q, want v0+1", got)
	}
	if f.target.creates != 1 || f.target.sets != 1 || f.target.tests != 1 {
		t.Errorf("target calls create=%d set=%d test=%d, want 1 each", f.target.creates, f.target.sets, f.target.tests)
	}
}

func TestEachStepTwice(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	old := currentID(t, f.stages(arn))
	token := f.open(arn)
	for _, step := range localrun.Steps {
		for i := range 2 {
			if err := f.invoke(f.engine, step, arn, token); err != nil {
				t.Fatalf("%s (run %d): %v", step, i+1, err)
			}
		}
	}
	assertRotated(t, f, arn, old, token, "v0")
	if f.target.creates != 1 {
		t.Errorf("Create ran %d times, want 1: a second createSecret must keep the stored value", f.target.creates)
	}
	if got := testbed.ValueOf(t, f.em, arn, token); got != "v0+1" {
		t.Errorf("new value %q, want the first one, v0+1", got)
	}
}

func TestTwoRotationsInARow(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	v0 := currentID(t, f.stages(arn))
	t1 := f.rotate(arn)
	t2 := f.rotate(arn)
	st := f.stages(arn)
	if !slices.Contains(st[t2], "AWSCURRENT") || !slices.Equal(st[t1], []string{"AWSPREVIOUS"}) {
		t.Fatalf("stages after two rotations: %v", st)
	}
	if len(st[v0]) != 0 {
		t.Errorf("first version still has stages %v", st[v0])
	}
	if got := testbed.ValueAt(t, f.em, arn, "AWSCURRENT"); got != "v0+1+2" {
		t.Errorf("current %q, want v0+1+2", got)
	}
	if got := testbed.ValueAt(t, f.em, arn, "AWSPREVIOUS"); got != "v0+1" {
		t.Errorf("previous %q, want v0+1", got)
	}
}

func TestFinishTwice(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	old := currentID(t, f.stages(arn))
	token := f.open(arn)
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine, step, arn, token); err != nil {
			t.Fatal(err)
		}
	}
	before := f.stages(arn)
	if err := f.invoke(f.engine, rotation.StepFinish, arn, token); err != nil {
		t.Fatalf("second finishSecret: %v", err)
	}
	if after := f.stages(arn); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("second finishSecret changed stages: %v -> %v", before, after)
	}
	assertRotated(t, f, arn, old, token, "v0")
}

func TestTokenAlreadyCurrentIsANoOp(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	token := f.rotate(arn)
	before := f.stages(arn)
	creates := f.target.creates
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine, step, arn, token); err != nil {
			t.Errorf("%s with a token already AWSCURRENT: %v", step, err)
		}
	}
	if after := f.stages(arn); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("stages changed: %v -> %v", before, after)
	}
	if f.target.creates != creates {
		t.Errorf("Create ran for a finished rotation")
	}
}

// rejected runs one invocation that must fail with want, and checks that the
// secret's labels and values did not change.
func rejected(t *testing.T, f *fixture, arn string, ev events.SecretsManagerSecretRotationEvent, want error, wantText string) {
	t.Helper()
	before := f.stages(arn)
	values := map[string]string{}
	for id, s := range before {
		if len(s) > 0 && !slices.Contains(s, "AWSPENDING") {
			values[id] = testbed.ValueOf(t, f.em, arn, id)
		}
	}
	err := f.engine.Handle(context.Background(), ev)
	if err == nil {
		t.Fatalf("%+v: no error", ev)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error %q is not %v", err, want)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error %q does not name %q", err, wantText)
	}
	if after := f.stages(arn); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("stages changed: %v -> %v", before, after)
	}
	for id, v := range values {
		if testbed.ValueOf(t, f.em, arn, id) != v {
			t.Errorf("value of version %s changed", id)
		}
	}
}

func TestRejectedInvocations(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	other := testbed.CreateSecret(t, f.em, "other")
	token := f.open(arn)
	otherToken := f.open(other)
	ev := func(step, id, tok string) events.SecretsManagerSecretRotationEvent {
		return events.SecretsManagerSecretRotationEvent{Step: step, SecretID: id, ClientRequestToken: tok}
	}

	t.Run("wrong token", func(t *testing.T) {
		bad := localrun.NewToken()
		rejected(t, f, arn, ev(rotation.StepCreate, arn, bad), rotation.ErrUnknownToken, bad)
	})
	t.Run("token of another secret", func(t *testing.T) {
		rejected(t, f, arn, ev(rotation.StepCreate, arn, otherToken), rotation.ErrUnknownToken, otherToken)
	})
	t.Run("unknown step", func(t *testing.T) {
		rejected(t, f, arn, ev("rotateNow", arn, token), rotation.ErrUnknownStep, "rotateNow")
	})
	t.Run("missing fields", func(t *testing.T) {
		rejected(t, f, arn, ev("", arn, ""), rotation.ErrMalformedEvent, "ClientRequestToken")
	})
	t.Run("missing secret", func(t *testing.T) {
		err := f.invoke(f.engine, rotation.StepCreate, "no-such-secret-"+token[:8], token)
		if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), "no-such-secret") {
			t.Errorf("error %v does not name the missing secret", err)
		}
	})
	t.Run("token not pending", func(t *testing.T) {
		// Finish the rotation, then use the token of the version that became
		// AWSPREVIOUS.
		for _, step := range localrun.Steps {
			if err := f.invoke(f.engine, step, arn, token); err != nil {
				t.Fatal(err)
			}
		}
		st := f.stages(arn)
		var prev string
		for id, s := range st {
			if slices.Contains(s, "AWSPREVIOUS") {
				prev = id
			}
		}
		rejected(t, f, arn, ev(rotation.StepSet, arn, prev), rotation.ErrTokenNotPending, prev)
	})
	if f.target.creates != 1 {
		t.Errorf("Create ran %d times, want 1 (for the one valid rotation)", f.target.creates)
	}
}

func TestRotationDisabled(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	token := f.open(arn)
	if _, err := f.em.SM.CancelRotateSecret(context.Background(), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	for _, step := range localrun.Steps {
		rejected(t, f, arn, events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}, rotation.ErrRotationOff, "not enabled")
	}
	if f.target.creates+f.target.sets+f.target.tests != 0 {
		t.Errorf("the target was called for a secret whose rotation is off")
	}
}

// TestCrashAtEveryCall kills each step after each of its Secrets Manager
// calls, then runs it again in a fresh engine (a new process) and finishes
// the rotation: the result must be the one of an uninterrupted rotation, and
// every earlier value must stay readable at every point.
func TestCrashAtEveryCall(t *testing.T) {
	em := testbed.Emulator(t)
	cfg := testbed.AWSConfig(t)
	for si, step := range localrun.Steps {
		for k := 0; ; k++ {
			f := &fixture{t: t, em: em, target: &counterTarget{}, logs: &bytes.Buffer{}}
			f.engine = f.newEngine(em.SM)
			arn := testbed.CreateSecret(t, em, "v0")
			old := currentID(t, f.stages(arn))
			token := f.open(arn)
			for _, prior := range localrun.Steps[:si] {
				if err := f.invoke(f.engine, prior, arn, token); err != nil {
					t.Fatalf("%s: %v", prior, err)
				}
			}
			// The k-th Secrets Manager call takes effect and fails; later ones
			// fail unsent: the function died right after its k-th call.
			crashing := f.newEngine(secretsmanager.NewFromConfig((&testbed.Crasher{K: k}).Config(cfg)))
			err := f.invoke(crashing, step, arn, token)
			if err == nil {
				// The step makes fewer than k calls: every crash point is covered.
				if k == 0 {
					t.Fatalf("%s made no Secrets Manager call", step)
				}
				break
			}
			if !errors.Is(err, testbed.ErrCrash) {
				t.Fatalf("%s crashed after %d calls: unexpected error %v", step, k, err)
			}
			if got := testbed.ValueOf(t, em, arn, old); got != "v0" {
				t.Fatalf("%s crashed after %d calls: old version unreadable or changed", step, k)
			}
			fresh := f.newEngine(em.SM)
			for _, rest := range localrun.Steps[si:] {
				if err := f.invoke(fresh, rest, arn, token); err != nil {
					t.Fatalf("%s crashed after %d calls; rerun of %s: %v", step, k, rest, err)
				}
			}
			assertRotated(t, f, arn, old, token, "v0")
			// A crash after createSecret stored its value must not give a
			// second value: the stored one is kept.
			if want := "v0+" + fmt.Sprint(f.target.creates); testbed.ValueOf(t, em, arn, token) != want {
				t.Errorf("%s crashed after %d calls: new value is not the last created one", step, k)
			}
			t.Logf("%s: crash after %d calls recovered", step, k)
		}
	}
}

func TestLogsCarryNoSecretValueAndTheAuditFields(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "s3cr3t-value-0")
	f.rotate(arn)
	f.rotate(arn)
	logs := f.logs.String()
	for _, v := range []string{"s3cr3t-value-0", "s3cr3t-value-0+1", "s3cr3t-value-0+1+2", "s3cr3t"} {
		if strings.Contains(logs, v) {
			t.Errorf("log output contains secret value %q", v)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d log lines for 2 rotations, want 8 (one per step)", len(lines))
	}
	for _, field := range []string{`"step":`, `"secret_arn":"` + arn, `"version_id":`, `"outcome":"success"`, `"duration_ms":`, `"target":"counter"`, `"function":"test"`} {
		for _, l := range lines {
			if !strings.Contains(l, field) {
				t.Errorf("log line lacks %s: %s", field, l)
			}
		}
	}
}

// A target that looks at the pending placeholder again in Create (iamkey
// does, for a crashed rotation's intent) costs no second call: the engine's
// "no value yet" answer is remembered for the invocation.
func TestCreateReadsTheEmptyPendingOnce(t *testing.T) {
	em := testbed.Emulator(t)
	var logs testbed.LogBuffer
	target := rotation.Funcs{CreateFunc: func(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
		for range 2 {
			if _, err := req.Versions.ByID(ctx, req.Secret.Token); !errors.Is(err, secretstore.ErrNoValue) {
				return rotation.CreateResponse{}, fmt.Errorf("pending placeholder: %v, want ErrNoValue", err)
			}
		}
		return rotation.CreateResponse{Value: req.Current.Value + "+1"}, nil
	}}
	e := rotation.New(em.SM, target, rotation.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	arn := testbed.CreateSecret(t, em, "v0")
	token := localrun.NewToken()
	if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"secretsmanager_calls":4`) {
		t.Errorf("createSecret made other than 4 Secrets Manager calls: %s", logs.String())
	}
}
