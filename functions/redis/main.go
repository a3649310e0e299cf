// Command redis is the rotation function for Redis and Valkey ACL users:
// a single user (the new password added beside the old one, the older ones
// removed once AWSCURRENT moved: no refused login) or alternating users,
// always through the admin user of a master secret. Its settings are
// environment variables; see docs/redis.md.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
)

func main() {
	// Every line a JSON object: what the go-redis library and the log
	// package (aws-lambda-go's failed-invocation line) print goes through
	// the function's logger too.
	log := lambdafn.NewLogger(os.Getenv)
	slog.SetDefault(log)
	redis.LogTo(log)
	lambdafn.Run("redis", redis.ConfigFromEnv, func(cfg redis.Config, awsCfg aws.Config) rotation.Target {
		return redis.New(cfg, secretsmanager.NewFromConfig(awsCfg))
	})
}
