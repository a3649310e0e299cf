// Command datakey is the rotation function for KMS-generated AES-256-GCM
// data keys. Its settings are environment variables; see docs/datakey.md or
// internal/targets/datakey.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/datakey"
)

func main() {
	lambdafn.Run("datakey", datakey.ConfigFromEnv, func(cfg datakey.Config, awsCfg aws.Config) rotation.Target {
		return datakey.New(cfg, kms.NewFromConfig(awsCfg))
	})
}
