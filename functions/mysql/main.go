// Command mysql is the rotation function for MySQL and MariaDB credentials:
// single user, or alternating users when the secret names a master secret.
// Its settings are environment variables; see docs/databases.md.
package main

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
)

func main() {
	lambdafn.Run("mysql", dbtarget.ConfigFromEnv, func(cfg dbtarget.Config, awsCfg aws.Config) rotation.Target {
		return dbtarget.New(cfg, mysql.Driver{}, secretsmanager.NewFromConfig(awsCfg), rds.NewFromConfig(awsCfg))
	})
}
