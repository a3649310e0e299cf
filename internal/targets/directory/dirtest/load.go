package dirtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
)

// Creds are credentials as a client holds them.
type Creds struct {
	DN, Password string
}

// StoredCreds reads the credentials stored in a secret's AWSCURRENT version
// (its "username", a DN, and "password"), as an application reads them.
func StoredCreds(sm *secretsmanager.Client, arn string) func(context.Context) (Creds, error) {
	return func(ctx context.Context) (Creds, error) {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId: aws.String(arn), VersionStage: aws.String("AWSCURRENT"),
		})
		if err != nil {
			return Creds{}, err
		}
		var v struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
			return Creds{}, fmt.Errorf("secret %s: not JSON", arn)
		}
		return Creds{DN: v.Username, Password: v.Password}, nil
	}
}

// BindWith binds once to ep with the credentials and closes the session:
// what a client of the directory does on each new connection.
func BindWith(ep directory.Endpoint) func(context.Context, Creds) error {
	return func(ctx context.Context, c Creds) error {
		conn, err := directory.Connect(ctx, ep, c.DN, c.Password)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// Load is k clients that keep binding with the credentials currently
// stored, counting on the client side the binds the directory refused.
type Load struct {
	Clients int
	// Current returns the stored credentials. One shared cache re-reads it
	// every 5 ms, as a client library caching its secret does.
	Current func(context.Context) (Creds, error)
	// Bind logs in once.
	Bind func(context.Context, Creds) error
}

// BindStats are the figures of a Load run, all counted by the clients.
type BindStats struct {
	Clients     int
	Binds       int64 // attempts
	Refused     int64 // refused for the credentials (dbsecret.ErrCannotLogIn)
	OtherErrors int64 // any other failure (not reached, TLS ...)
	Duration    time.Duration
	// FirstOther is the first other failure, to tell why.
	FirstOther error
}

// Run runs the clients until ctx ends, or until each did perClient binds
// when perClient > 0. It fails only when the stored credentials cannot be
// read at the start.
func (l Load) Run(ctx context.Context, perClient int) (BindStats, error) {
	first, err := l.Current(ctx)
	if err != nil {
		return BindStats{}, fmt.Errorf("read the stored credentials: %w", err)
	}
	var cur atomic.Pointer[Creds]
	cur.Store(&first)
	cacheCtx, stopCache := context.WithCancel(ctx)
	var cacheDone sync.WaitGroup
	cacheDone.Add(1)
	go func() {
		defer cacheDone.Done()
		for cacheCtx.Err() == nil {
			if c, err := l.Current(cacheCtx); err == nil {
				cur.Store(&c)
			}
			select {
			case <-cacheCtx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	st := BindStats{Clients: l.Clients}
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for range l.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil && (perClient <= 0 || n < perClient); n++ {
				err := l.Bind(ctx, *cur.Load())
				if ctx.Err() != nil {
					return // cut off by the end of the run, not judged
				}
				atomic.AddInt64(&st.Binds, 1)
				switch {
				case err == nil:
				case errors.Is(err, dbsecret.ErrCannotLogIn):
					atomic.AddInt64(&st.Refused, 1)
				default:
					atomic.AddInt64(&st.OtherErrors, 1)
					mu.Lock()
					if st.FirstOther == nil {
						st.FirstOther = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	st.Duration = time.Since(start)
	stopCache()
	cacheDone.Wait()
	return st, nil
}
