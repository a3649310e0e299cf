// Command generic is the rotation function for random secrets: passwords,
// API keys and HMAC/JWT signing secrets. Its settings are environment
// variables; see the README or internal/targets/generic.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/generic"
)

func main() {
	lambdafn.Run("generic", generic.ConfigFromEnv, func(cfg generic.Config, _ aws.Config) rotation.Target {
		return generic.New(cfg)
	})
}
