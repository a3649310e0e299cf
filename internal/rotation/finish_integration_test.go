package rotation_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// finishSecret invoked right after RotateSecret (createSecret never ran)
// must not move AWSCURRENT onto the empty placeholder: every reader of the
// secret would fail from then on (issue 9, finding 5).
func TestFinishRefusesAVersionWithoutValue(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	token := f.open(arn)
	rejected(t, f, arn, events.SecretsManagerSecretRotationEvent{Step: rotation.StepFinish, SecretID: arn, ClientRequestToken: token},
		rotation.ErrNoPendingValue, "has no value")
	if got := testbed.ValueAt(t, f.em, arn, "AWSCURRENT"); got != "v0" {
		t.Errorf("AWSCURRENT no longer reads v0")
	}
	// The rotation still completes once createSecret has run.
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine, step, arn, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	if got := testbed.ValueAt(t, f.em, arn, "AWSCURRENT"); got != "v0+1" {
		t.Errorf("AWSCURRENT %q after the rotation, want v0+1", got)
	}
}

// hookTarget is a counterTarget with a finish hook that fails a given
// number of times, and records what it was told.
type hookTarget struct {
	counterTarget
	mu       sync.Mutex
	failures int
	calls    int
	replaced []string
}

func (h *hookTarget) Finish(ctx context.Context, req *rotation.StepRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	h.replaced = append(h.replaced, req.Replaced)
	if h.failures > 0 {
		h.failures--
		return errors.New("hook failed")
	}
	return nil
}

// A finish hook that failed after AWSCURRENT moved runs again when Secrets
// Manager retries finishSecret, although the token is current by then
// (issue 9, finding 6): the retry is not answered "nothing to do".
func TestFinishHookRunsAgainOnRetry(t *testing.T) {
	em := testbed.Emulator(t)
	target := &hookTarget{failures: 1}
	var logs testbed.LogBuffer
	e := rotation.New(em.SM, target, rotation.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	arn := testbed.CreateSecret(t, em, "v0")
	stages, err := em.Stages(context.Background(), arn)
	if err != nil {
		t.Fatal(err)
	}
	old := currentID(t, stages)
	token := localrun.NewToken()
	if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	ev := func(step string) events.SecretsManagerSecretRotationEvent {
		return events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}
	}
	for _, step := range localrun.Steps[:3] {
		if err := e.Handle(context.Background(), ev(step)); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	err = e.Handle(context.Background(), ev(rotation.StepFinish))
	if err == nil || !strings.Contains(err.Error(), "hook failed") || !strings.Contains(err.Error(), "runs the finish hook again") {
		t.Fatalf("first finishSecret: error %v, want the hook's failure", err)
	}
	if got := testbed.ValueAt(t, em, arn, "AWSCURRENT"); got != "v0+1" {
		t.Fatalf("AWSCURRENT did not move before the hook ran")
	}
	// The retry, by a fresh instance as after a crash, and once more.
	for i := range 2 {
		fresh := rotation.New(em.SM, target, rotation.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err := fresh.Handle(context.Background(), ev(rotation.StepFinish)); err != nil {
			t.Fatalf("finishSecret retry %d: %v", i+1, err)
		}
	}
	if target.calls != 3 {
		t.Errorf("finish hook ran %d times, want 3 (the failure and two retries)", target.calls)
	}
	for i, r := range target.replaced {
		if r != old {
			t.Errorf("finish hook call %d was told the replaced version is %q, want %s", i+1, r, old)
		}
	}
	if !strings.Contains(logs.String(), `"action":"finish_hook_rerun"`) {
		t.Errorf("the retry's log line does not say the hook ran again: %s", logs.String())
	}
	// Other steps of the finished rotation stay no-ops.
	for _, step := range localrun.Steps[:3] {
		if err := e.Handle(context.Background(), ev(step)); err != nil {
			t.Errorf("%s after the rotation finished: %v", step, err)
		}
	}
	if target.creates != 1 || target.sets != 1 || target.tests != 1 {
		t.Errorf("target steps ran create=%d set=%d test=%d after the rotation finished, want 1 each", target.creates, target.sets, target.tests)
	}
}

// hangingTarget's Set waits for its context: a target whose server never
// answers.
type hangingTarget struct{ counterTarget }

func (h *hangingTarget) Set(ctx context.Context, req *rotation.StepRequest) error {
	// A real network operation that never completes: a TCP listener that
	// accepts and stays silent.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	_, err = conn.Read(make([]byte, 1))
	if ctx.Err() != nil {
		return fmt.Errorf("read from silent server: %w", ctx.Err())
	}
	return err
}

// A step whose target hangs ends before the Lambda's deadline with the
// step's failure line and metric, instead of "Task timed out" and nothing
// (issue 9, finding 7).
func TestStepStopsBeforeTheLambdaDeadline(t *testing.T) {
	em := testbed.Emulator(t)
	var logs testbed.LogBuffer
	e := rotation.New(em.SM, &hangingTarget{}, rotation.Options{
		Function: "fn", Logger: slog.New(slog.NewJSONHandler(&logs, nil)), MetricsNamespace: "Test",
	})
	arn := testbed.CreateSecret(t, em, "v0")
	token := localrun.NewToken()
	if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	ev := func(step string) events.SecretsManagerSecretRotationEvent {
		return events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}
	}
	if err := e.Handle(context.Background(), ev(rotation.StepCreate)); err != nil {
		t.Fatal(err)
	}
	lambdaCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := e.Handle(lambdaCtx, ev(rotation.StepSet))
	if !errors.Is(err, rotation.ErrDeadline) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("setSecret against a silent server: error %v, want ErrDeadline", err)
	}
	if lambdaCtx.Err() != nil {
		t.Errorf("the step used up the Lambda's whole time: no margin was kept to report the failure")
	}
	var rec map[string]any
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["outcome"] != "failure" || rec["step"] != "setSecret" || rec["RotationStepFailure"] != float64(1) || rec["_aws"] == nil {
		t.Errorf("no failure line with its metric for the timed-out step: %v", rec)
	}
	if !strings.Contains(fmt.Sprint(rec["error"]), "ran out of time") {
		t.Errorf("the error does not say the step ran out of time: %v", rec["error"])
	}
}

// An event the runtime hands over that is not a rotation event is logged
// and counted as a failure (issue 9, finding 7), and the function answers
// with an error that names the problem.
func TestMalformedEventIsLoggedAndCounted(t *testing.T) {
	em := testbed.Emulator(t)
	var logs testbed.LogBuffer
	e := rotation.New(em.SM, &counterTarget{}, rotation.Options{
		Function: "fn", Logger: slog.New(slog.NewJSONHandler(&logs, nil)), MetricsNamespace: "Test",
	})
	for _, body := range []string{`{"Step": 5}`, `[1,2]`, `{"Step":"createSecret","SecretId":"x"}`} {
		logs.Reset()
		err := e.HandleJSON(context.Background(), json.RawMessage(body))
		if !errors.Is(err, rotation.ErrMalformedEvent) {
			t.Errorf("%s: error %v, want ErrMalformedEvent", body, err)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &rec); err != nil {
			t.Fatalf("%s: no single JSON log line: %q", body, logs.String())
		}
		if rec["outcome"] != "failure" || rec["RotationStepFailure"] != float64(1) || rec["step"] == "" {
			t.Errorf("%s: the log line does not count a failure under a named step: %v", body, rec)
		}
	}
}

// A function whose configuration is invalid answers every invocation with
// the ConfigError, logged and counted as a failure, so that the failure
// alarms fire (issue 9, finding 10).
func TestRefusingEngineCountsEachInvocation(t *testing.T) {
	var logs testbed.LogBuffer
	cause := errors.New("PASSWORD_LENGTH=0 is not between 8 and 4096")
	e := rotation.Refuse(cause, rotation.Options{Function: "fn", Logger: slog.New(slog.NewJSONHandler(&logs, nil)), MetricsNamespace: "Test"})
	err := e.HandleJSON(context.Background(), json.RawMessage(`{"Step":"createSecret","SecretId":"arn:x","ClientRequestToken":"t"}`))
	if err != cause {
		t.Fatalf("error %v, want the configuration error itself", err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["outcome"] != "failure" || rec["RotationStepFailure"] != float64(1) || rec["step"] != "createSecret" || !strings.Contains(fmt.Sprint(rec["error"]), "PASSWORD_LENGTH") {
		t.Errorf("log line %v does not count the refused invocation", rec)
	}
}

// testSecret reads the token's version instead of DescribeSecret, and still
// gives the refusals the other steps give: a token of no version, of
// another secret, a version that is not pending, one still without value.
func TestTestSecretRefusals(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, "v0")
	other := testbed.CreateSecret(t, f.em, "other")
	token := f.open(arn)
	otherToken := f.open(other)
	ev := func(tok string) events.SecretsManagerSecretRotationEvent {
		return events.SecretsManagerSecretRotationEvent{Step: rotation.StepTest, SecretID: arn, ClientRequestToken: tok}
	}
	bad := localrun.NewToken()
	rejected(t, f, arn, ev(bad), rotation.ErrUnknownToken, bad)
	rejected(t, f, arn, ev(otherToken), rotation.ErrUnknownToken, otherToken)
	rejected(t, f, arn, ev(token), rotation.ErrNoPendingValue, token)
	old := currentID(t, f.stages(arn))
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine, step, arn, token); err != nil {
			t.Fatal(err)
		}
	}
	rejected(t, f, arn, ev(old), rotation.ErrTokenNotPending, old)
	if f.target.tests != 1 {
		t.Errorf("the target's Test ran %d times, want 1", f.target.tests)
	}
	// A fresh instance asked to test the finished rotation's token: nothing
	// to do, as for every step.
	if err := f.invoke(f.newEngine(f.em.SM), rotation.StepTest, arn, token); err != nil {
		t.Errorf("testSecret of a finished rotation: %v", err)
	}
	if f.target.tests != 1 {
		t.Errorf("the target's Test ran for a finished rotation")
	}
}

// The engine remembers the values of the rotation in progress for the
// steps that follow, and forgets them when the rotation finishes: the next
// rotation reads the current value afresh.
func TestValuesAreRememberedForOneRotationOnly(t *testing.T) {
	em := testbed.Emulator(t)
	var calls testbed.Calls
	api := secretsmanager.NewFromConfig(calls.Config(testbed.AWSConfig(t)))
	target := &counterTarget{}
	e := rotation.New(api, target, rotation.Options{Logger: slog.New(slog.DiscardHandler)})
	arn := testbed.CreateSecret(t, em, "v0")
	for round := range 2 {
		token := localrun.NewToken()
		if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		got := testbed.StepCalls(t, &calls, localrun.Steps, func(step string) error {
			return e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
		})
		// counterTarget's Set and Test read the pending value: known.
		want := map[string]int{"createSecret": 4, "setSecret": 1, "testSecret": 0, "finishSecret": 2}
		testbed.AssertCalls(t, fmt.Sprintf("rotation %d", round+1), got, want, 7)
		if err := em.CloseRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
	}
	if got := testbed.ValueAt(t, em, arn, "AWSCURRENT"); got != "v0+1+2" {
		t.Errorf("AWSCURRENT %q, want v0+1+2", got)
	}
	st, err := em.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range st.VersionIdsToStages {
		if slices.Contains(s, "AWSCURRENT") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d versions carry AWSCURRENT", n)
	}
}

// resentMove sends every UpdateSecretVersionStage twice and answers with
// the second, as the SDK does when the answer to the first is lost on the
// way (the connection closed under it) and it re-sends the call.
type resentMove struct{ *secretsmanager.Client }

func (r resentMove) UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	if _, err := r.Client.UpdateSecretVersionStage(ctx, in, opts...); err != nil {
		return nil, err
	}
	return r.Client.UpdateSecretVersionStage(ctx, in, opts...)
}

// TestFinishSurvivesAResentMove: when the move of AWSCURRENT took effect
// but its answer was lost and the call sent again, the second is refused
// (AWSCURRENT is no longer on the old version). finishSecret must see that
// the label is where it should be and succeed, instead of failing a
// rotation that worked.
func TestFinishSurvivesAResentMove(t *testing.T) {
	em := testbed.Emulator(t)
	ctx := context.Background()
	arn := testbed.CreateSecret(t, em, "v0")
	token := localrun.NewToken()
	if _, err := em.OpenRotation(ctx, arn, token); err != nil {
		t.Fatal(err)
	}
	// The refusal this test depends on: without it the test proves nothing.
	probe := testbed.CreateSecret(t, em, "p0")
	st, err := em.Stages(ctx, probe)
	if err != nil {
		t.Fatal(err)
	}
	pv, err := em.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(probe), SecretString: aws.String("p1"), VersionStages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatal(err)
	}
	move := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(probe), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: pv.VersionId, RemoveFromVersionId: aws.String(currentID(t, st))}
	if _, err := (resentMove{em.SM}).UpdateSecretVersionStage(ctx, move); err == nil {
		t.Fatal("the emulator accepted a re-sent move of AWSCURRENT; this test cannot show what it is for")
	}

	e := rotation.New(resentMove{em.SM}, &counterTarget{}, rotation.Options{})
	for _, step := range localrun.Steps {
		ev := events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}
		if err := e.Handle(ctx, ev); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	if got := testbed.ValueAt(t, em, arn, "AWSCURRENT"); got != "v0+1" {
		t.Fatalf("AWSCURRENT holds %q, want v0+1", got)
	}
}
