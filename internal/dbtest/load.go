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
)

// LoginFunc logs in once and closes the session.
type LoginFunc func(user, password string) error

// LoadStats are the figures of a MeasureLogins run.
type LoadStats struct {
	Clients, Rotations int
	Logins             int64 // attempts (a retried attempt counts once)
	AuthFailures       int64 // logins refused for the credentials, after any retry
	Retried            int64 // first attempts refused and then retried
	OtherErrors        int64 // any other failure (server not reached ...)
	Duration           time.Duration
}

// MeasureLogins runs k clients that keep opening connections with the
// credentials of AWSCURRENT, re-read every few milliseconds, while r
// rotations run back to back. With retry, a client whose login is refused
// reads AWSCURRENT and AWSPENDING afresh and tries each (up to ten
// rounds, 10 ms apart), as a client of a
// single-user secret should.
func MeasureLogins(t testing.TB, h *Harness, arn string, k, r int, retry bool, login LoginFunc) LoadStats {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Reads do not use ctx: a client in the middle of its retries when the
	// measurement ends must still be able to finish them, or its refusal
	// would be counted although a retry would have logged in.
	read := func(stage string) (*dbsecret.Secret, error) {
		out, err := h.Em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
		if err != nil {
			return nil, err
		}
		return dbsecret.Parse(aws.ToString(out.SecretString), dbsecret.Defaults{})
	}
	var current atomic.Pointer[dbsecret.Secret]
	first, err := read("AWSCURRENT")
	if err != nil {
		t.Fatal(err)
	}
	current.Store(first)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the shared cache, refreshed every 5 ms
		defer wg.Done()
		for ctx.Err() == nil {
			if s, err := read("AWSCURRENT"); err == nil {
				current.Store(s)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	st := LoadStats{Clients: k, Rotations: r}
	deadline := time.Now().Add(50 * time.Second) // bounded whatever happens
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				s := current.Load()
				atomic.AddInt64(&st.Logins, 1)
				err := login(s.Username, s.Password)
				if err != nil && retry && errors.Is(err, dbsecret.ErrCannotLogIn) {
					atomic.AddInt64(&st.Retried, 1)
					// Up to ten rounds: between two reads the labels
					// may move on to the next back-to-back rotation.
				rounds:
					for round := 0; round < 10; round++ {
						if round > 0 {
							time.Sleep(10 * time.Millisecond)
						}
						for _, stage := range []string{"AWSCURRENT", "AWSPENDING"} {
							if s2, rerr := read(stage); rerr == nil {
								if err = login(s2.Username, s2.Password); err == nil {
									break rounds
								}
							}
						}
					}
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
