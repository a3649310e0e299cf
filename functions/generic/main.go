// Command generic is the rotation function for random secrets: passwords,
// API keys and HMAC/JWT signing secrets. Its settings are environment
// variables; see the README or internal/targets/generic.
package main

import (
	"context"
	"log/slog"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/generic"
)

func main() {
	lambdafn.Start("generic", func(ctx context.Context, env lambdafn.Env) (rotation.Target, error) {
		cfg, err := generic.ConfigFromEnv(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return generic.New(cfg), nil
	})
}
