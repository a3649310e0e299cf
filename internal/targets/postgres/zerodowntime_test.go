package postgres_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds/pgxcreds"
)

const clients, rotations = 4, 5

func pgLogin(t testing.TB) dbtest.LoginFunc {
	return func(user, pw string) error { return login(t, &dbsecret.Secret{Username: user, Password: pw}) }
}

// attemptsKey carries a client's attempt counter to the tracer.
type attemptsKey struct{}

// countAttempts counts the connection attempts of one pgxcreds.Connect.
type countAttempts struct{}

func (countAttempts) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	if n, ok := ctx.Value(attemptsKey{}).(*int32); ok {
		atomic.AddInt32(n, 1)
	}
	return ctx
}

func (countAttempts) TraceConnectEnd(context.Context, pgx.TraceConnectEndData) {}

// pgx.ConnConfig.Tracer must be a QueryTracer; only the connect part counts.
func (countAttempts) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (countAttempts) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// pgxClient is an application that connects with pkg/dbcreds/pgxcreds:
// its own host, TLS and database, the user and password of the secret.
func pgxClient(t testing.TB, src *dbcreds.Source) dbtest.Client {
	st := dbtest.Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(st["PG_PORT"])
	cfg.Host, cfg.Port, cfg.Database, cfg.TLSConfig, cfg.Fallbacks = st["PG_HOST"], uint16(port), "postgres", tlsCfg, nil
	cfg.ConnectTimeout = 5e9
	cfg.Tracer = countAttempts{}
	return func(ctx context.Context) (int, error) {
		var n int32
		conn, err := pgxcreds.Connect(context.WithValue(ctx, attemptsKey{}, &n), src, cfg)
		if err != nil {
			kind := dbsecret.ErrCannotReach
			if dbcreds.IsAuthFailure(err) {
				kind = dbsecret.ErrCannotLogIn
			}
			return int(n), &dbsecret.ConnError{Kind: kind, Err: err}
		}
		conn.Close(ctx)
		return int(n), nil
	}
}

// poolClient is an application with a pgxpool whose BeforeConnect is
// pgxcreds.BeforeConnect. Each login takes a new pool connection: the one
// acquired is closed before it goes back.
func poolClient(t testing.TB, src *dbcreds.Source) dbtest.Client {
	st := dbtest.Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig("sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(st["PG_PORT"])
	cc := cfg.ConnConfig
	cc.Host, cc.Port, cc.Database, cc.TLSConfig, cc.Fallbacks, cc.ConnectTimeout = st["PG_HOST"], uint16(port), "postgres", tlsCfg, nil, 5e9
	cfg.BeforeConnect = pgxcreds.BeforeConnect(src)
	cfg.MaxConns = clients
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return func(ctx context.Context) (int, error) {
		c, err := pool.Acquire(ctx)
		if err != nil {
			kind := dbsecret.ErrCannotReach
			if dbcreds.IsAuthFailure(err) {
				kind = dbsecret.ErrCannotLogIn
			}
			return 1, &dbsecret.ConnError{Kind: kind, Err: err}
		}
		c.Conn().Close(ctx)
		c.Release()
		return 1, nil
	}
}

func TestZeroDowntimeAlternatingUsers(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	arn, _, _, _ := alternating(t, h, "zd")
	st := dbtest.MeasureLogins(t, h, arn, clients, rotations, dbtest.CachedCurrent(t, h, arn, pgLogin(t)))
	t.Logf("postgres alternating users: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors",
		st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.OtherErrors)
	if st.AuthFailures != 0 || st.OtherErrors != 0 || st.Logins < 50 {
		t.Fatalf("want zero failed logins out of at least 50: %+v", st)
	}
}

// TestZeroDowntimeSingleUser measures a client that reads AWSCURRENT (every
// 5 ms) and does not retry, one that connects with pgxcreds.Connect, which
// must see no refused login, and a pgxpool with pgxcreds.BeforeConnect,
// which cannot retry inside a connection attempt: its figure is measured,
// not asserted (see docs/databases.md).
func TestZeroDowntimeSingleUser(t *testing.T) {
	for _, variant := range []string{"none", "connect", "pool"} {
		withPackage := variant == "connect"
		user, pw := dbtest.PGUser(t, "zd", "")
		h := dbtest.NewHarness(t, newTarget(t))
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil)))
		var client dbtest.Client
		var name string
		switch variant {
		case "none":
			client, name = dbtest.CachedCurrent(t, h, arn, pgLogin(t)), "AWSCURRENT re-read every 5 ms, no retry"
		case "connect":
			client, name = pgxClient(t, dbtest.Source(t, h, arn)), "pkg/dbcreds (pgxcreds.Connect)"
		case "pool":
			client, name = poolClient(t, dbtest.Source(t, h, arn)), "pkg/dbcreds (pgxpool, pgxcreds.BeforeConnect)"
		}
		st := dbtest.MeasureLogins(t, h, arn, clients, rotations, client)
		t.Logf("postgres single user, %s: %d clients, %d rotations in %v: %d logins, %d refused (%d retried), %d other errors",
			name, st.Clients, st.Rotations, st.Duration.Round(1e6), st.Logins, st.AuthFailures, st.Retried, st.OtherErrors)
		if st.OtherErrors != 0 || st.Logins < 20 {
			t.Fatalf("unexpected errors or too few logins: %+v", st)
		}
		if withPackage && st.AuthFailures != 0 {
			t.Fatalf("a client using pkg/dbcreds saw %d refused logins", st.AuthFailures)
		}
	}
}
