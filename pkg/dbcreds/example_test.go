package dbcreds_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-sql-driver/mysql"

	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
)

// A database/sql pool for MySQL or MariaDB whose new connections survive
// every rotation of the secret: the host, TLS and database come from the
// application's configuration, the user and password from the secret.
func ExampleNewConnector() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	src, err := dbcreds.New(dbcreds.Options{
		SecretID: "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf",
		Secrets:  secretsmanager.NewFromConfig(cfg),
	})
	if err != nil {
		log.Fatal(err)
	}
	open := func(c dbcreds.Credentials) (driver.Connector, error) {
		mc := mysql.NewConfig()
		mc.Net, mc.Addr, mc.DBName, mc.TLSConfig = "tcp", "db.internal:3306", "app", "true"
		mc.User, mc.Passwd = c.Username, c.Password
		return mysql.NewConnector(mc)
	}
	// MySQL reports a refused login as error 1045 (ER_ACCESS_DENIED_ERROR).
	refused := func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1045
	}
	db := sql.OpenDB(dbcreds.NewConnector(src, open, refused))
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		log.Fatal(err)
	}
}
