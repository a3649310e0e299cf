// Command iamkey is the rotation function for the access keys of IAM users.
// Its settings are environment variables; see docs/iamkey.md or
// internal/targets/iamkey.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/iamkey"
)

func main() {
	lambdafn.Run("iamkey", iamkey.ConfigFromEnv, func(cfg iamkey.Config, awsCfg aws.Config) rotation.Target {
		return iamkey.New(cfg, awsCfg)
	})
}
