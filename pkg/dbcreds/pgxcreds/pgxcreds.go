// Package pgxcreds connects pgx to PostgreSQL with the credentials of a
// rotated database secret (see package dbcreds): Connect retries a refused
// login with AWSCURRENT read afresh, then AWSPENDING, so that a single-user
// rotation refuses no connection.
//
// For a pool, BeforeConnect (pgxpool.Config.BeforeConnect) gives each new
// connection AWSCURRENT, read at most once a second. pgxpool offers no way
// to retry inside one connection attempt, so a connection opened between
// setSecret and finishSecret of a single-user rotation is refused; the pool
// follows the new AWSCURRENT within a second of finishSecret. For a pool
// that refuses nothing, use alternating users, or database/sql with
// dbcreds.NewConnector over pgx's stdlib.GetConnector.
package pgxcreds

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
)

// Connect connects with cfg (host, port, TLS, database: the application's
// settings) and the user and password of src. cfg is not changed.
func Connect(ctx context.Context, src *dbcreds.Source, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	return dbcreds.Connect(ctx, src, func(ctx context.Context, c dbcreds.Credentials) (*pgx.Conn, error) {
		cc := cfg.Copy()
		cc.User, cc.Password = c.Username, c.Password
		return pgx.ConnectConfig(ctx, cc)
	}, dbcreds.IsAuthFailure)
}

// BeforeConnect returns a pgxpool.Config.BeforeConnect hook that sets the
// user and password of each new connection from AWSCURRENT, read at most a
// second before.
func BeforeConnect(src *dbcreds.Source) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cfg *pgx.ConnConfig) error {
		c, err := src.Fresh(ctx, time.Second)
		if err != nil {
			return err
		}
		cfg.User, cfg.Password = c.Username, c.Password
		return nil
	}
}
