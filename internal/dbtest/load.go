package dbtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
)

// LoginFunc logs in once and closes the session.
type LoginFunc func(user, password string) error

// Client logs in once, as an application would, and closes the session.
// attempts is the number of logins it tried (more than one: it retried
// after a refusal).
type Client func(ctx context.Context) (attempts int, err error)

// LoadStats are the figures of a MeasureLogins run.
type LoadStats struct {
	Clients, Rotations int
	Logins             int64 // client logins (a retried login counts once)
	AuthFailures       int64 // logins refused for the credentials, after any retry
	Retried            int64 // logins that needed more than one attempt
	OtherErrors        int64 // any other failure (server not reached ...)
	Duration           time.Duration
}

// CachedCurrent is a client without the client package: it logs in with
// the credentials of AWSCURRENT from a cache shared by all clients and
// re-read every 5 ms, and does not retry.
func CachedCurrent(t testing.TB, h *Harness, arn string, login LoginFunc) Client {
	t.Helper()
	read := func() (*dbsecret.Secret, error) {
		out, err := h.Em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSCURRENT")})
		if err != nil {
			return nil, err
		}
		return dbsecret.Parse(aws.ToString(out.SecretString), dbsecret.Defaults{})
	}
	first, err := read()
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[dbsecret.Secret]
	current.Store(first)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if s, err := read(); err == nil {
				current.Store(s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func(context.Context) (int, error) {
		s := current.Load()
		return 1, login(s.Username, s.Password)
	}
}

// Source returns a pkg/dbcreds Source of the secret, over the emulator,
// with the package's default cache lifetime.
func Source(t testing.TB, h *Harness, arn string) *dbcreds.Source {
	t.Helper()
	src, err := dbcreds.New(dbcreds.Options{SecretID: arn, Secrets: h.Em.SM})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// MeasureLogins runs k clients that keep logging in with client while r
// rotations run back to back, and counts what they saw.
func MeasureLogins(t testing.TB, h *Harness, arn string, k, r int, client Client) LoadStats {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	st := LoadStats{Clients: k, Rotations: r}
	deadline := time.Now().Add(50 * time.Second) // bounded whatever happens
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				atomic.AddInt64(&st.Logins, 1)
				// Not ctx: a client in the middle of its retries when the
				// measurement ends must be able to finish them, or its
				// refusal would be counted although a retry would have
				// logged in.
				attempts, err := client(context.Background())
				if attempts > 1 {
					atomic.AddInt64(&st.Retried, 1)
				}
				switch {
				case err == nil:
				case errors.Is(err, dbsecret.ErrCannotLogIn):
					atomic.AddInt64(&st.AuthFailures, 1)
				default:
					atomic.AddInt64(&st.OtherErrors, 1)
					t.Logf("login error: %v", err)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	start := time.Now()
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < r; i++ {
		if _, err := h.Rotate(arn); err != nil {
			cancel()
			wg.Wait()
			t.Fatalf("rotation %d under load: %v", i+1, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	st.Duration = time.Since(start)
	return st
}
