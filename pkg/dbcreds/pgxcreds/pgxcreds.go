// Package pgxcreds connects pgx to PostgreSQL with the credentials of a
// rotated database secret (see package dbcreds), so that a single-user
// rotation refuses no connection:
//
//   - Connect makes one connection, retrying a refused login with AWSCURRENT
//     read afresh, then AWSPENDING.
//   - BeforeConnect is a pgxpool.Config.BeforeConnect hook. pgxpool cannot
//     retry inside a connection attempt, so the hook chooses beforehand: it
//     reads AWSCURRENT and AWSPENDING (two GetSecretValue calls per new pool
//     connection; concurrent ones share them) and, while no rotation is
//     open, hands the pool AWSCURRENT. While one is (a version other than
//     AWSCURRENT carries AWSPENDING), it first opens and closes a probe
//     connection with the credentials Connect would try, in the same order,
//     and hands the pool those that logged in: one more login per new pool
//     connection, during rotations only.
package pgxcreds

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
// user and password of each new pool connection (see the package comment).
func BeforeConnect(src *dbcreds.Source) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cfg *pgx.ConnConfig) error {
		c, err := src.Fresh(ctx, 0)
		if err != nil {
			return err
		}
		if _, open, err := src.Pending(ctx, 0); err != nil {
			return err
		} else if open {
			probe := cfg.Config.Copy()
			c, err = dbcreds.Connect(ctx, src, func(ctx context.Context, cr dbcreds.Credentials) (dbcreds.Credentials, error) {
				probe.User, probe.Password = cr.Username, cr.Password
				conn, err := pgconn.ConnectConfig(ctx, probe)
				if err != nil {
					return dbcreds.Credentials{}, err
				}
				conn.Close(ctx)
				return cr, nil
			}, dbcreds.IsAuthFailure)
			if err != nil {
				return err
			}
		}
		cfg.User, cfg.Password = c.Username, c.Password
		return nil
	}
}
