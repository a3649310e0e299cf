// Command jwtkeys is the rotation function for asymmetric JWT signing keys
// (ES256, RS256, EdDSA) published as a JWKS. Its settings are environment
// variables; see docs/jwtkeys.md or internal/targets/jwtkeys.
package main

import (
	"context"
	"log/slog"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/jwtkeys"
)

func main() {
	lambdafn.Start("jwtkeys", func(ctx context.Context, env lambdafn.Env) (rotation.Target, error) {
		cfg, err := jwtkeys.ConfigFromEnv(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return jwtkeys.New(cfg), nil
	})
}
