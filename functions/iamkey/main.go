// Command iamkey is the rotation function for the access keys of IAM users.
// Its settings are environment variables; see docs/iamkey.md or
// internal/targets/iamkey.
package main

import (
	"context"
	"log/slog"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/iamkey"
)

func main() {
	lambdafn.Start("iamkey", func(ctx context.Context, env lambdafn.Env) (rotation.Target, error) {
		cfg, err := iamkey.ConfigFromEnv(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return iamkey.New(cfg, env.AWS), nil
	})
}
