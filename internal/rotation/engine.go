// Package rotation implements the four-step rotation protocol of AWS Secrets
// Manager once, for every target type: the entry checks, createSecret,
// setSecret, testSecret and finishSecret, the staging labels, and one
// structured log line per invocation.
package rotation

import (
	"context"
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
	}
}

// Handle runs one step of a rotation. Its signature is the one lambda.Start
// takes. The error it returns names the step, the secret and the cause, and
// never a secret value.
func (e *Engine) Handle(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	start := time.Now()
	callsBefore := e.store.Calls()
	log := e.log.With(
		slog.String("function", e.function),
		slog.String("target", e.targetType),
		slog.String("step", ev.Step),
		slog.String("version_id", ev.ClientRequestToken),
	)

	action, arn, err := e.handle(ctx, ev, log)

	durationMS := float64(time.Since(start).Microseconds()) / 1000
	attrs := []slog.Attr{
		slog.String("secret_arn", secretName(arn, ev.SecretID)),
		slog.String("action", action),
		slog.Float64("duration_ms", durationMS),
		slog.Int64("secretsmanager_calls", e.store.Calls()-callsBefore),
	}
	if e.namespace != "" {
		attrs = append(attrs, e.metrics(start, durationMS, err == nil)...)
	}
	if err != nil {
		err = &StepError{Step: stepName(ev.Step), Secret: secretName(arn, ev.SecretID), Err: err}
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
func (e *Engine) handle(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, log *slog.Logger) (action, arn string, err error) {
	if err := validateEvent(ev); err != nil {
		return "rejected", "", err
	}
	meta, err := e.store.Describe(ctx, ev.SecretID)
	if err != nil {
		return "rejected", "", err
	}
	arn = meta.ARN
	// RotateSecret turns rotation on before it invokes the function, so a
	// secret whose rotation is off, or was never set up (the field is then
	// absent), is not being rotated by Secrets Manager: refuse rather than
	// change a secret nobody asked to rotate.
	if meta.RotationEnabled == nil || !*meta.RotationEnabled {
		return "rejected", arn, ErrRotationOff
	}
	token := ev.ClientRequestToken
	if _, ok := meta.Stages[token]; !ok {
		return "rejected", arn, fmt.Errorf("%w: %s", ErrUnknownToken, token)
	}
	if meta.HasStage(token, secretstore.StageCurrent) {
		// The rotation already finished: every step is then a no-op.
		return "already_current", arn, nil
	}
	if !meta.HasStage(token, secretstore.StagePending) {
		return "rejected", arn, fmt.Errorf("%w: version %s has stages %v", ErrTokenNotPending, token, meta.Stages[token])
	}

	secret := Secret{ARN: arn, Name: meta.Name, Token: token}
	log = log.With(slog.String("secret_arn", arn))
	versions := newVersions(e.store, meta, token)
	req := &StepRequest{Secret: secret, Versions: versions, Log: log}

	switch ev.Step {
	case StepCreate:
		return e.create(ctx, ev, secret, versions, log)
	case StepSet:
		if err := e.target.Set(ctx, req); err != nil {
			return "set_failed", arn, err
		}
		return "set", arn, nil
	case StepTest:
		if err := e.target.Test(ctx, req); err != nil {
			return "test_failed", arn, err
		}
		return "tested", arn, nil
	case StepFinish:
		return e.finish(ctx, meta, req)
	}
	return "rejected", arn, fmt.Errorf("%w %q", ErrUnknownStep, ev.Step)
}

func (e *Engine) create(ctx context.Context, ev events.SecretsManagerSecretRotationEvent, secret Secret, versions *Versions, log *slog.Logger) (string, string, error) {
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
	resp, err := e.target.Create(ctx, &CreateRequest{Secret: secret, Current: current, Versions: versions, Log: log})
	if err != nil {
		return "create_failed", secret.ARN, err
	}
	if resp.Value == "" {
		return "create_failed", secret.ARN, ErrEmptyValue
	}
	if err := e.store.PutPending(ctx, secret.ARN, secret.Token, resp.Value, ev.RotationToken); err != nil {
		return "create_failed", secret.ARN, err
	}
	return "created", secret.ARN, nil
}

func (e *Engine) finish(ctx context.Context, meta secretstore.Metadata, req *StepRequest) (string, string, error) {
	current, ok := meta.VersionWithStage(secretstore.StageCurrent)
	if !ok {
		return "finish_failed", meta.ARN, ErrNoCurrent
	}
	if err := e.store.MoveCurrent(ctx, meta.ARN, req.Secret.Token, current); err != nil {
		return "finish_failed", meta.ARN, err
	}
	if f, ok := e.target.(Finisher); ok {
		if err := f.Finish(ctx, req); err != nil {
			return "finish_hook_failed", meta.ARN, fmt.Errorf("after moving %s: %w", secretstore.StageCurrent, err)
		}
	}
	return "moved_current", meta.ARN, nil
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
