// Package lambdafn starts a rotation function: it reads the configuration
// once, at init, builds the engine over the target and hands it to
// lambda.Start. Every functions/<target>/main.go is a call to Start.
package lambdafn

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// DefaultMetricsNamespace is the CloudWatch namespace of the functions'
// Embedded Metric Format records; METRICS_NAMESPACE overrides it, and
// METRICS_NAMESPACE=off turns the records off.
const DefaultMetricsNamespace = "SecretsRotation"

// Env gives the function's settings and the AWS configuration to a target's
// constructor.
type Env struct {
	Getenv func(string) string
	AWS    aws.Config
	Log    *slog.Logger
}

// NewTarget builds a target from the environment, or says what is wrong.
type NewTarget func(ctx context.Context, env Env) (rotation.Target, error)

// Start runs the function of targetType until Lambda stops it.
//
// A configuration error does not crash the process: every invocation then
// fails with the error, so that Secrets Manager records a message that names
// the bad setting instead of "Runtime exited".
func Start(targetType string, newTarget NewTarget) {
	lambda.Start(Handler(context.Background(), targetType, os.Getenv, newTarget))
}

// Config is a target's configuration, which describes itself (nothing
// secret) for the function's start-up log line.
type Config interface {
	Describe() []slog.Attr
}

// Run starts the function of targetType in the shape every function shares:
// parse reads and validates the configuration once, from the environment;
// it is logged; build makes the target from it and the AWS configuration.
func Run[C Config](targetType string, parse func(getenv func(string) string) (C, error), build func(C, aws.Config) rotation.Target) {
	Start(targetType, func(ctx context.Context, env Env) (rotation.Target, error) {
		cfg, err := parse(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return build(cfg, env.AWS), nil
	})
}

// Handler builds the handler that Start runs. It takes the raw event, so
// that an event the runtime could not decode is still logged and counted.
func Handler(ctx context.Context, targetType string, getenv func(string) string, newTarget NewTarget) func(context.Context, json.RawMessage) error {
	log := NewLogger(getenv)
	opts := rotation.Options{
		TargetType:       targetType,
		Function:         getenv("AWS_LAMBDA_FUNCTION_NAME"),
		Logger:           log,
		MetricsNamespace: metricsNamespace(getenv),
	}
	fail := func(cause error) func(context.Context, json.RawMessage) error {
		err := &ConfigError{Target: targetType, Err: cause}
		log.Error("invalid configuration", slog.String("function", opts.Function), slog.String("target", targetType), slog.String("error", err.Error()))
		// Every invocation then fails with err, and each failure is logged
		// and counted like a failed step, so the failure alarms fire.
		return rotation.Refuse(err, opts).HandleJSON
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fail(fmt.Errorf("load AWS configuration: %w", err))
	}
	target, err := newTarget(ctx, Env{Getenv: getenv, AWS: awsCfg, Log: log})
	if err != nil {
		return fail(err)
	}
	return rotation.New(secretsmanager.NewFromConfig(awsCfg), target, opts).HandleJSON
}

// metricsNamespace reads METRICS_NAMESPACE: unset means
// DefaultMetricsNamespace, "off" no metrics.
func metricsNamespace(getenv func(string) string) string {
	switch ns := strings.TrimSpace(getenv("METRICS_NAMESPACE")); ns {
	case "":
		return DefaultMetricsNamespace
	case "off":
		return ""
	default:
		return ns
	}
}

// ConfigError is the error every invocation returns when the function's
// configuration is invalid; Lambda reports it as "ConfigError".
type ConfigError struct {
	Target string
	Err    error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s function configuration: %v", e.Target, e.Err)
}

// Unwrap returns the cause.
func (e *ConfigError) Unwrap() error { return e.Err }

// NewLogger returns the JSON logger of the functions: one object per line on
// standard output, which Lambda sends to CloudWatch Logs. LOG_LEVEL sets the
// level (debug, info, warn, error; default info).
func NewLogger(getenv func(string) string) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(getenv("LOG_LEVEL")))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
}
