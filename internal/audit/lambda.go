package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Result is what an invocation of the auditor returns: the counts of its
// summary line.
type Result struct {
	SecretsListed  int            `json:"secrets_listed"`
	SecretsInScope int            `json:"secrets_in_scope"`
	Findings       map[string]int `json:"findings"`
}

// Start runs the auditor as a Lambda function until Lambda stops it. The
// configuration is read once; a bad setting fails every invocation with an
// error that names it (so the function's Errors alarm fires), instead of
// crashing the runtime.
func Start() {
	lambda.Start(Handler(context.Background(), os.Getenv))
}

// Handler builds the function's handler. The event (EventBridge's
// scheduled event) carries nothing the auditor needs.
func Handler(ctx context.Context, getenv func(string) string) func(context.Context, json.RawMessage) (Result, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.TrimSpace(getenv("LOG_LEVEL")))); err != nil {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
	fail := func(err error) func(context.Context, json.RawMessage) (Result, error) {
		log.Error("invalid configuration", slog.String("error", err.Error()))
		return func(context.Context, json.RawMessage) (Result, error) { return Result{}, err }
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return fail(fmt.Errorf("auditor configuration: %w", err))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fail(fmt.Errorf("load AWS configuration: %w", err))
	}
	if cfg.Region == "" {
		cfg.Region = awsCfg.Region
	}
	log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
	a := New(secretsmanager.NewFromConfig(awsCfg), cfg, log)
	return func(ctx context.Context, _ json.RawMessage) (Result, error) {
		rep, err := a.Run(ctx)
		if err != nil {
			return Result{}, err
		}
		res := Result{SecretsListed: rep.Listed, SecretsInScope: rep.InScope, Findings: map[string]int{}}
		for _, k := range Kinds {
			res.Findings[k] = rep.Count(k)
		}
		return res, nil
	}
}
