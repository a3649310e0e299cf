package pgxcreds_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"log"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds/pgxcreds"
)

func source() *dbcreds.Source {
	cfg, err := config.LoadDefaultConfig(context.Background())
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
	return src
}

// One connection that a single-user rotation never refuses.
func ExampleConnect() {
	ctx := context.Background()
	cfg, err := pgx.ParseConfig("host=db.internal dbname=app sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	conn, err := pgxcreds.Connect(ctx, source(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
}

// A pgxpool whose new connections take AWSCURRENT.
func ExampleBeforeConnect() {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig("host=db.internal dbname=app sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	cfg.BeforeConnect = pgxcreds.BeforeConnect(source())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
}

// A database/sql pool over pgx that retries a refused login inside each
// new connection, so no rotation refuses one.
func Example_databaseSQL() {
	cfg, err := pgx.ParseConfig("host=db.internal dbname=app sslmode=verify-full")
	if err != nil {
		log.Fatal(err)
	}
	open := func(c dbcreds.Credentials) (driver.Connector, error) {
		cc := cfg.Copy()
		cc.User, cc.Password = c.Username, c.Password
		return stdlib.GetConnector(*cc), nil
	}
	db := sql.OpenDB(dbcreds.NewConnector(source(), open, nil))
	defer db.Close()
}
