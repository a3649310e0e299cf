// Package rotation implements the four-step rotation protocol of AWS Secrets
// Manager once, for every target type: the entry checks, createSecret,
// setSecret, testSecret and finishSecret, the staging labels, and one
// structured log line per invocation.
package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// The steps of the protocol, as Secrets Manager names them in the event.
const (
	StepCreate = "createSecret"
	StepSet    = "setSecret"
	StepTest   = "testSecret"
	StepFinish = "finishSecret"
)

// Errors of the entry checks; test for them with errors.Is.
var (
	ErrMalformedEvent  = errors.New("malformed rotation event")
	ErrUnknownStep     = errors.New("unknown rotation step")
	ErrRotationOff     = errors.New("rotation is not enabled for the secret")
	ErrUnknownToken    = errors.New("token is not a version of the secret")
	ErrTokenNotPending = errors.New("token's version is not AWSPENDING")
	ErrNoCurrent       = errors.New("secret has no AWSCURRENT version")
	ErrEmptyValue      = errors.New("target produced an empty value")
	ErrNoPendingValue  = errors.New("pending version has no value")
	ErrDeadline        = errors.New("step ran out of time")
)

// StepError is the error of a failed invocation. Lambda reports its type
// name, so Secrets Manager and CloudWatch show "StepError" with a message
// that names the step, the secret and the cause.
type StepError struct {
	Step   string
	Secret string
	Err    error
}

func (e *StepError) Error() string { return e.Step + " " + e.Secret + ": " + e.Err.Error() }

// Unwrap returns the cause, for errors.Is and errors.As.
func (e *StepError) Unwrap() error { return e.Err }

// Outcomes written in the log line of each invocation.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Engine runs the rotation protocol for one target type.
type Engine struct {
	store      *secretstore.Store
	target     Target
	targetType string
	function   string
	namespace  string
	log        *slog.Logger
	cache      *rotationCache
	// refusal, when set, is the answer to every invocation (see Refuse).
	refusal error
}

// Options configure an Engine.
type Options struct {
	// TargetType names the target in logs and metrics only; no behaviour is
	// switched on it.
	TargetType string
	// Function is the Lambda function name, for logs.
	Function string
	// Logger receives one line per invocation. Defaults to slog.Default().
	Logger *slog.Logger
	// MetricsNamespace, when set, makes each invocation's log line also a
	// CloudWatch Embedded Metric Format record in that namespace: duration,
	// success and failure per function and step, with no PutMetricData call.
	MetricsNamespace string
}

// New returns an engine that rotates secrets through api with target.
func New(api secretstore.API, target Target, opts Options) *Engine {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Engine{
		store:      secretstore.New(api),
		target:     target,
		targetType: opts.TargetType,
		function:   opts.Function,
		namespace:  opts.MetricsNamespace,
		log:        log,
		cache:      newRotationCache(),
	}
}

// Refuse returns an engine that answers every invocation with err, logged
// and counted as a failure like any failed step: the engine of a function
// whose configuration is invalid. err is returned as it is (not as a
// StepError), so Lambda reports its own type name.
func Refuse(err error, opts Options) *Engine {
	e := New(nil, nil, opts)
	e.refusal = err
	return e
}

// HandleJSON runs one step of a rotation from the raw event, and is what
// lambda.Start runs: an event that is not a rotation event's JSON is logged
// and counted like any failed step, instead of failing in the runtime's
// decoder where no log line or metric would record it.
func (e *Engine) HandleJSON(ctx context.Context, raw json.RawMessage) error {
	var ev events.SecretsManagerSecretRotationEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return e.report(ctx, time.Now(), ev, "rejected", "", fmt.Errorf("%w: %v", ErrMalformedEvent, err), 0)
	}
	return e.Handle(ctx, ev)
}

// Handle runs one step of a rotation. The error it returns names the step,
// the secret and the cause, and never a secret value.
//
// The step runs under a deadline a margin before the Lambda's own (see
// stepDeadline), so that a target that hangs ends in this function's
// failure line and metric rather than in "Task timed out".
func (e *Engine) Handle(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	start := time.Now()
	if e.refusal != nil {
		return e.report(ctx, start, ev, "refused", "", e.refusal, 0)
	}
	callsBefore := e.store.Calls()
	stepCtx, cancel, margin := stepDeadline(ctx, start)
	defer cancel()
	action, arn, err := e.handle(stepCtx, ev, e.logger(ev))
	if err != nil && stepCtx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("%w: stopped %s before the Lambda timeout (raise the function's Timeout, or check that the target answers): %w",
			ErrDeadline, margin, err)
	}
	return e.report(ctx, start, ev, action, arn, err, e.store.Calls()-callsBefore)
}

// The margin kept between a step's deadline and the Lambda's: a tenth of the
// time the invocation has, at least minDeadlineMargin and at most
// maxDeadlineMargin. Enough to write the log line and return the error.
const (
	minDeadlineMargin = 250 * time.Millisecond
	maxDeadlineMargin = 3 * time.Second
)

func deadlineMargin(remaining time.Duration) time.Duration {
	return min(max(remaining/10, minDeadlineMargin), maxDeadlineMargin)
}

// stepDeadline returns ctx with a deadline a margin before ctx's own, when
// it has one (Lambda's context always does), and the margin.
func stepDeadline(ctx context.Context, now time.Time) (context.Context, context.CancelFunc, time.Duration) {
	dl, ok := ctx.Deadline()
	if !ok {
		c, cancel := context.WithCancel(ctx)
		return c, cancel, 0
	}
	margin := deadlineMargin(dl.Sub(now))
	c, cancel := context.WithDeadline(ctx, dl.Add(-margin))
	return c, cancel, margin
}

func (e *Engine) logger(ev events.SecretsManagerSecretRotationEvent) *slog.Logger {
	return e.log.With(
		slog.String("function", e.function),
		slog.String("target", e.targetType),
		slog.String("step", stepName(ev.Step)),
		slog.String("version_id", ev.ClientRequestToken),
	)
}

// report writes the invocation's one log line (an Embedded Metric Format
// record too) and returns err as Lambda should see it.
func (e *Engine) report(ctx context.Context, start time.Time, ev events.SecretsManagerSecretRotationEvent, action, arn string, err error, calls int64) error {
	log := e.logger(ev)
	durationMS := float64(time.Since(start).Microseconds()) / 1000
	attrs := []slog.Attr{
		slog.String("secret_arn", secretName(arn, ev.SecretID)),
		slog.String("action", action),
		slog.Float64("duration_ms", durationMS),
		slog.Int64("secretsmanager_calls", calls),
	}
	if e.namespace != "" {
		attrs = append(attrs, e.metrics(start, durationMS, err == nil)...)
	}
	if err != nil {
		if e.refusal == nil {
			err = &StepError{Step: stepName(ev.Step), Secret: secretName(arn, ev.SecretID), Err: err}
		}
		attrs = append(attrs, slog.String("outcome", OutcomeFailure), slog.String("error", err.Error()))
		log.LogAttrs(ctx, slog.LevelError, "rotation step failed", attrs...)
		return err
	}
	attrs = append(attrs, slog.String("outcome", OutcomeSuccess))
	log.LogAttrs(ctx, slog.LevelInfo, "rotation step done", attrs...)
	return nil
}

// Names of the metrics in the Embedded Metric Format records.
const (
	MetricDuration = "RotationStepDuration"
	MetricSuccess  = "RotationStepSuccess"
	MetricFailure  = "RotationStepFailure"
)

// metrics returns the attributes that turn a log line into an Embedded
// Metric Format record: the _aws metadata, and the metric values. The
// dimensions are the line's own function and step fields.
func (e *Engine) metrics(start time.Time, durationMS float64, ok bool) []slog.Attr {
	success, failure := 1, 0
	if !ok {
		success, failure = 0, 1
	}
	meta := map[string]any{
		"Timestamp": start.UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  e.namespace,
			"Dimensions": [][]string{{"function", "step"}},
			"Metrics": []map[string]string{
				{"Name": MetricDuration, "Unit": "Milliseconds"},
				{"Name": MetricSuccess, "Unit": "Count"},
				{"Name": MetricFailure, "Unit": "Count"},
			},
		}},
	}
	return []slog.Attr{
		slog.Any("_aws", meta),
		slog.Float64(MetricDuration, durationMS),
		slog.Int(MetricSuccess, success),
		slog.Int(MetricFailure, failure),
	}
}

// handle runs the entry checks and the step. It returns what it did, for the
// log, and the secret's ARN once known.
//
// The checks a step makes depend on what it does (docs/security.md lists
// them per step). A step that changes something — createSecret, setSecret,
// finishSecret — starts with DescribeSecret and refuses unless rotation is
// on and the token is this secret's AWSPENDING version. testSecret changes
// nothing: reading the token's version proves it pending (or already
// current) at the cost of the read it makes anyway. A step the target does
// not use (Idler) makes no call at all.
func (e *Engine) handle(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, log *slog.Logger) (action, arn string, err error) {
	if err := validateEvent(ev); err != nil {
		return "rejected", "", err
	}
	if idler, ok := e.target.(Idler); ok && (ev.Step == StepSet || ev.Step == StepTest) && idler.Idle(ev.Step) {
		return "nothing_to_do", "", nil
	}
	known := e.cache.rotation(ev.SecretID, ev.ClientRequestToken)
	if ev.Step == StepTest {
		return e.test(ctx, ev, known, log)
	}
	meta, err := e.store.Describe(ctx, ev.SecretID)
	if err != nil {
		return "rejected", "", err
	}
	arn = meta.ARN
	current, err := checkEntry(meta, ev.ClientRequestToken)
	if err != nil {
		return "rejected", arn, err
	}
	known.identify(meta.ARN, meta.Name)
	secret := Secret{ARN: arn, Name: meta.Name, Token: ev.ClientRequestToken}
	log = log.With(slog.String("secret_arn", arn))
	versions := newVersions(e.store, ev.SecretID, secret.Token, &meta, known)
	req := &StepRequest{Secret: secret, Versions: versions, Log: log}
	if current {
		if ev.Step == StepFinish {
			return e.finishAgain(ctx, meta, req)
		}
		// The rotation already finished: the other steps have nothing to do.
		return "already_current", arn, nil
	}

	switch ev.Step {
	case StepCreate:
		return e.create(ctx, ev, req)
	case StepSet:
		if err := e.target.Set(ctx, req); err != nil {
			return "set_failed", arn, err
		}
		return "set", arn, nil
	case StepFinish:
		return e.finish(ctx, meta, req)
	}
	return "rejected", arn, fmt.Errorf("%w %q", ErrUnknownStep, ev.Step)
}

// checkEntry makes the entry checks of the protocol on what DescribeSecret
// said. current is true when the token's version already carries
// AWSCURRENT: the rotation is finished.
func checkEntry(meta secretstore.Metadata, token string) (current bool, err error) {
	// RotateSecret turns rotation on before it invokes the function, so a
	// secret whose rotation is off, or was never set up (the field is then
	// absent), is not being rotated by Secrets Manager: refuse rather than
	// change a secret nobody asked to rotate.
	if meta.RotationEnabled == nil || !*meta.RotationEnabled {
		return false, ErrRotationOff
	}
	if _, ok := meta.Stages[token]; !ok {
		return false, fmt.Errorf("%w: %s", ErrUnknownToken, token)
	}
	if meta.HasStage(token, secretstore.StageCurrent) {
		return true, nil
	}
	if !meta.HasStage(token, secretstore.StagePending) {
		return false, fmt.Errorf("%w: version %s has stages %v", ErrTokenNotPending, token, meta.Stages[token])
	}
	return false, nil
}

// test runs testSecret. It changes nothing, so instead of DescribeSecret it
// reads the token's version, which it needs anyway: the labels that come
// with the value show whether the token is this secret's pending version
// (or already current). Only when that read cannot tell (no such version,
// or no value yet) does it ask DescribeSecret, for the exact refusal.
func (e *Engine) test(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, known *cachedRotation, log *slog.Logger) (string, string, error) {
	token := ev.ClientRequestToken
	arn, name := known.identity()
	if _, ok := known.get(token); !ok || arn == "" {
		v, err := e.store.Read(ctx, ev.SecretID, token, "")
		switch {
		case err == nil && v.HasStage(secretstore.StageCurrent):
			return "already_current", v.ARN, nil
		case err == nil && v.HasStage(secretstore.StagePending):
			known.identify(v.ARN, v.Name)
			known.put(token, v.Value)
			arn, name = v.ARN, v.Name
		case err == nil || errors.Is(err, secretstore.ErrNoValue):
			return e.refuseTest(ctx, ev)
		default:
			return "rejected", "", err
		}
	}
	log = log.With(slog.String("secret_arn", arn))
	req := &StepRequest{
		Secret:   Secret{ARN: arn, Name: name, Token: token},
		Versions: newVersions(e.store, ev.SecretID, token, nil, known),
		Log:      log,
	}
	if err := e.target.Test(ctx, req); err != nil {
		return "test_failed", arn, err
	}
	return "tested", arn, nil
}

// refuseTest explains why testSecret cannot run: DescribeSecret gives the
// same refusal the other steps give.
func (e *Engine) refuseTest(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) (string, string, error) {
	meta, err := e.store.Describe(ctx, ev.SecretID)
	if err != nil {
		return "rejected", "", err
	}
	current, err := checkEntry(meta, ev.ClientRequestToken)
	if err != nil {
		return "rejected", meta.ARN, err
	}
	if current {
		return "already_current", meta.ARN, nil
	}
	return "rejected", meta.ARN, fmt.Errorf("%w: pending version %s has no value yet (has createSecret run?)", ErrNoPendingValue, ev.ClientRequestToken)
}

func (e *Engine) create(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, req *StepRequest) (string, string, error) {
	secret, versions := req.Secret, req.Versions
	// A value stored by an earlier run of this step is kept: generating a
	// second one could orphan whatever setSecret already did with the first.
	_, err := versions.Pending(ctx)
	if err == nil {
		return "kept_existing", secret.ARN, nil
	}
	if !errors.Is(err, secretstore.ErrNoValue) {
		return "create_failed", secret.ARN, err
	}
	current, err := versions.Current(ctx)
	if err != nil {
		if errors.Is(err, secretstore.ErrNoValue) {
			err = fmt.Errorf("%w: %w", ErrNoCurrent, err)
		}
		return "create_failed", secret.ARN, err
	}
	resp, err := e.target.Create(ctx, &CreateRequest{Secret: secret, Current: current, Versions: versions, Log: req.Log})
	if err != nil {
		return "create_failed", secret.ARN, err
	}
	if resp.Value == "" {
		return "create_failed", secret.ARN, ErrEmptyValue
	}
	if err := e.store.PutPending(ctx, secret.ARN, secret.Token, resp.Value, ev.RotationToken); err != nil {
		return "create_failed", secret.ARN, err
	}
	versions.known.put(secret.Token, resp.Value)
	return "created", secret.ARN, nil
}

func (e *Engine) finish(ctx context.Context, meta secretstore.Metadata, req *StepRequest) (string, string, error) {
	current, ok := meta.VersionWithStage(secretstore.StageCurrent)
	if !ok {
		return "finish_failed", meta.ARN, ErrNoCurrent
	}
	// AWSCURRENT never moves onto a version that holds nothing: every
	// reader of the secret would fail from then on.
	if _, err := req.Versions.Pending(ctx); err != nil {
		if errors.Is(err, secretstore.ErrNoValue) {
			err = fmt.Errorf("%w: %w", ErrNoPendingValue, err)
		}
		return "finish_failed", meta.ARN, err
	}
	if err := e.store.MoveCurrent(ctx, meta.ARN, req.Secret.Token, current); err != nil {
		return "finish_failed", meta.ARN, err
	}
	// The rotation is over: its values need not be kept any longer (the
	// hook reads what it needs through req, which still holds them).
	e.cache.forget(req.Versions.known)
	req.Replaced = current
	if err := e.runFinisher(ctx, req); err != nil {
		return "finish_hook_failed", meta.ARN, err
	}
	return "moved_current", meta.ARN, nil
}

// finishAgain is finishSecret for a token that is already AWSCURRENT: the
// label moved in an earlier run. The target's finish hook runs again, so
// that a hook that failed (and made Secrets Manager retry) gets done.
func (e *Engine) finishAgain(ctx context.Context, meta secretstore.Metadata, req *StepRequest) (string, string, error) {
	if _, ok := e.target.(Finisher); !ok {
		return "already_current", meta.ARN, nil
	}
	req.Replaced, _ = meta.VersionWithStage(secretstore.StagePrevious)
	if err := e.runFinisher(ctx, req); err != nil {
		return "finish_hook_failed", meta.ARN, err
	}
	return "finish_hook_rerun", meta.ARN, nil
}

func (e *Engine) runFinisher(ctx context.Context, req *StepRequest) error {
	f, ok := e.target.(Finisher)
	if !ok {
		return nil
	}
	if err := f.Finish(ctx, req); err != nil {
		return fmt.Errorf("after moving %s (a retry of finishSecret runs the finish hook again): %w", secretstore.StageCurrent, err)
	}
	return nil
}

func validateEvent(ev events.SecretsManagerSecretRotationEvent) error {
	var missing []string
	if ev.Step == "" {
		missing = append(missing, "Step")
	}
	if ev.SecretID == "" {
		missing = append(missing, "SecretId")
	}
	if ev.ClientRequestToken == "" {
		missing = append(missing, "ClientRequestToken")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %v", ErrMalformedEvent, missing)
	}
	switch ev.Step {
	case StepCreate, StepSet, StepTest, StepFinish:
		return nil
	}
	return fmt.Errorf("%w %q (want %s, %s, %s or %s)", ErrUnknownStep, ev.Step, StepCreate, StepSet, StepTest, StepFinish)
}

func stepName(step string) string {
	if step == "" {
		return "rotation"
	}
	return step
}

func secretName(arn, id string) string {
	if arn != "" {
		return arn
	}
	if id != "" {
		return id
	}
	return "<no secret id>"
}
