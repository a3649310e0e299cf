// Command provider is the rotation function for keys that a third-party
// provider issues through its HTTP API (SaaS API keys, RabbitMQ users),
// described by a JSON document; see docs/provider.md and the examples in
// configs/.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/provider"
)

func main() {
	lambdafn.Run("provider", provider.ConfigFromEnv, func(cfg provider.Config, awsCfg aws.Config) rotation.Target {
		return provider.New(cfg, awsCfg)
	})
}
