// Command directory is the rotation function for service-account passwords
// in Active Directory and RFC 4511 directories such as OpenLDAP: a single
// account, or alternating accounts when the secret names a master secret.
// Its settings are environment variables; see docs/directory.md.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
)

func main() {
	lambdafn.Run("directory", directory.ConfigFromEnv, func(cfg directory.Config, awsCfg aws.Config) rotation.Target {
		return directory.New(cfg, secretsmanager.NewFromConfig(awsCfg))
	})
}
