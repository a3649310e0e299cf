// Command jwtkeys is the rotation function for asymmetric JWT signing keys
// (ES256, RS256, EdDSA) published as a JWKS. Its settings are environment
// variables; see docs/jwtkeys.md or internal/targets/jwtkeys.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/jwtkeys"
)

func main() {
	lambdafn.Run("jwtkeys", jwtkeys.ConfigFromEnv, func(cfg jwtkeys.Config, _ aws.Config) rotation.Target {
		return jwtkeys.New(cfg)
	})
}
