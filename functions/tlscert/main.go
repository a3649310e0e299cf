// Command tlscert is the rotation function for TLS certificates, signed by
// a CA held in another secret or by an ACM Private CA. Its settings are
// environment variables; see docs/tlscert.md or internal/targets/tlscert.
package main

import (
	"context"
	"log/slog"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/tlscert"
)

func main() {
	lambdafn.Start("tlscert", func(ctx context.Context, env lambdafn.Env) (rotation.Target, error) {
		cfg, err := tlscert.ConfigFromEnv(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return tlscert.New(cfg, env.AWS), nil
	})
}
