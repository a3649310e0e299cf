// Command tlscert is the rotation function for TLS certificates, signed by
// a CA held in another secret or by an ACM Private CA. Its settings are
// environment variables; see docs/tlscert.md or internal/targets/tlscert.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/tlscert"
)

func main() {
	lambdafn.Run("tlscert", tlscert.ConfigFromEnv, func(cfg tlscert.Config, awsCfg aws.Config) rotation.Target {
		return tlscert.New(cfg, awsCfg)
	})
}
