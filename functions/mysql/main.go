// Command mysql is the rotation function for MySQL and MariaDB credentials:
// single user, or alternating users when the secret names a master secret.
// Its settings are environment variables; see docs/databases.md.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
)

func main() {
	lambdafn.Start("mysql", func(ctx context.Context, env lambdafn.Env) (rotation.Target, error) {
		cfg, err := dbtarget.ConfigFromEnv(env.Getenv)
		if err != nil {
			return nil, err
		}
		env.Log.LogAttrs(ctx, slog.LevelInfo, "configuration", cfg.Describe()...)
		return dbtarget.New(cfg, mysql.Driver{}, secretsmanager.NewFromConfig(env.AWS), rds.NewFromConfig(env.AWS)), nil
	})
}
