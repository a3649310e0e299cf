// Command datakey is the rotation function for KMS-generated AES-256-GCM
// data keys. Its settings are environment variables; see docs/datakey.md or
// internal/targets/datakey.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/datakey"
)

func main() {
	lambdafn.Start("datakey", func(ctx context.Context, env lambdafn.Env) (rotation.Target, error) {
		cfg, err := datakey.ConfigFromEnv(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return datakey.New(cfg, kms.NewFromConfig(env.AWS)), nil
	})
}
