// Command rabbitmq is the rotation function for RabbitMQ users, including
// Amazon MQ for RabbitMQ: alternating users (the default) or a single user,
// changed by the administrator that the secret's master secret names. Its
// settings are environment variables; see docs/rabbitmq.md.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
)

func main() {
	lambdafn.Run("rabbitmq", rabbitmq.ConfigFromEnv, func(cfg rabbitmq.Config, awsCfg aws.Config) rotation.Target {
		return rabbitmq.New(cfg, rabbitmq.Driver{}, secretsmanager.NewFromConfig(awsCfg))
	})
}
