// Package loadtest is test equipment for the zero-downtime tests of account
// targets (caches, brokers, databases): clients that keep opening new
// connections with the credentials stored in a secret, re-read every few
// milliseconds as a caching client would, counting on the client side how
// many logins the server refused. It reaches only the servers its login
// function names; its loops stop by themselves.
package loadtest

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
)

// Credentials are a user name and its password.
type Credentials struct {
	User, Password string
}

// JSON is the secret value that holds c, in the fields of the AWS
// documentation ("username", "password").
func (c Credentials) JSON() string {
	b, _ := json.Marshal(map[string]string{"username": c.User, "password": c.Password})
	return string(b)
}

// PutAPI is the call StoreCurrent makes.
type PutAPI interface {
	PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// StoreCurrent stores c as the secret's new AWSCURRENT, which is what the
// clients see when a rotation's finishSecret moves the label.
func StoreCurrent(ctx context.Context, api PutAPI, arn string, c Credentials) error {
	_, err := api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), SecretString: aws.String(c.JSON()), VersionStages: []string{"AWSCURRENT"},
	})
	if err != nil {
		return fmt.Errorf("store the credentials of %s in %s: %w", c.User, arn, err)
	}
	return nil
}

// ReadFunc reads the credentials clients should use now.
type ReadFunc func(ctx context.Context) (Credentials, error)

// LoginFunc opens one connection with the credentials, proves it works and
// closes it. A refusal of the credentials is an error wrapping
// dbsecret.ErrCannotLogIn.
type LoginFunc func(ctx context.Context, user, password string) error

// SecretsManagerAPI is the call the clients make.
type SecretsManagerAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// FromSecret reads the "username" and "password" fields of the secret's
// version at stage (AWSCURRENT for an ordinary client), naming the stage:
// emulators answer a read without one with AWSPENDING during a rotation.
func FromSecret(api SecretsManagerAPI, arn, stage string) ReadFunc {
	return func(ctx context.Context) (Credentials, error) {
		out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String(stage)})
		if err != nil {
			return Credentials{}, err
		}
		var v struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v); err != nil {
			return Credentials{}, fmt.Errorf("secret %s %s: not JSON with username and password", arn, stage)
		}
		return Credentials{User: v.Username, Password: v.Password}, nil
	}
}

// Options shape a run. Zero values take the defaults.
type Options struct {
	Clients int           // concurrent clients (4)
	Refresh time.Duration // how often the shared cache re-reads the credentials (5 ms)
	Pause   time.Duration // pause of a client between two logins (2 ms)
	// MaxDuration stops the run by itself if Stop is never called (2 min).
	MaxDuration time.Duration
	// MaxLoginsPerClient bounds each client's logins (100000).
	MaxLoginsPerClient int
}

func (o *Options) defaults() {
	if o.Clients <= 0 {
		o.Clients = 4
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Millisecond
	}
	if o.Pause <= 0 {
		o.Pause = 2 * time.Millisecond
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 2 * time.Minute
	}
	if o.MaxLoginsPerClient <= 0 {
		o.MaxLoginsPerClient = 100000
	}
}

// Stats are what the clients saw.
type Stats struct {
	Clients     int
	Logins      int64 // attempts
	Refused     int64 // attempts refused for the credentials (dbsecret.ErrCannotLogIn)
	OtherErrors int64 // any other failure (server not reached, ...)
	// LastError is the last failure of either kind, for the test's message.
	LastError error
	Duration  time.Duration
}

func (s Stats) String() string {
	return fmt.Sprintf("%d clients, %s: %d logins, %d refused, %d other errors", s.Clients, s.Duration.Round(time.Millisecond), s.Logins, s.Refused, s.OtherErrors)
}

// Run is a load in progress.
type Run struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	start   time.Time
	stats   Stats
	mu      sync.Mutex
	stopped bool
}

// Start reads the credentials once (an error here is returned: the load
// cannot start), then runs the shared cache and the clients until Stop or
// opt.MaxDuration.
func Start(ctx context.Context, read ReadFunc, login LoginFunc, opt Options) (*Run, error) {
	opt.defaults()
	first, err := read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the credentials: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, opt.MaxDuration)
	r := &Run{cancel: cancel, start: time.Now(), stats: Stats{Clients: opt.Clients}}
	var current atomic.Pointer[Credentials]
	current.Store(&first)
	r.wg.Add(1)
	go func() { // the shared cache
		defer r.wg.Done()
		for ctx.Err() == nil {
			if c, err := read(ctx); err == nil {
				current.Store(&c)
			}
			sleep(ctx, opt.Refresh)
		}
	}()
	for range opt.Clients {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			for i := 0; i < opt.MaxLoginsPerClient && ctx.Err() == nil; i++ {
				c := current.Load()
				// A login in flight finishes even if Stop comes meanwhile:
				// its outcome is part of what the clients saw.
				lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				err := login(lctx, c.User, c.Password)
				lcancel()
				r.record(err)
				sleep(ctx, opt.Pause)
			}
		}()
	}
	return r, nil
}

func (r *Run) record(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Logins++
	switch {
	case err == nil:
		return
	case errors.Is(err, dbsecret.ErrCannotLogIn):
		r.stats.Refused++
	default:
		r.stats.OtherErrors++
	}
	r.stats.LastError = err
}

// Snapshot returns the figures so far.
func (r *Run) Snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Duration = time.Since(r.start)
	return s
}

// Stop ends the run, waits for the logins in flight, and returns the
// figures. Calling it again returns the same figures.
func (r *Run) Stop() Stats {
	r.cancel()
	r.wg.Wait()
	r.mu.Lock()
	if !r.stopped {
		r.stopped = true
		r.stats.Duration = time.Since(r.start)
	}
	s := r.stats
	r.mu.Unlock()
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
