package dbtarget_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSilentServerEndsTheStep: a server that accepts connections and never
// answers must end setSecret with the step's failure log line, within the
// invocation's deadline whatever DB_CONNECT_TIMEOUT says, and within
// DB_CONNECT_TIMEOUT when the invocation has no deadline. Otherwise Lambda
// kills the function ("Task timed out") before it logs anything.
func TestSilentServerEndsTheStep(t *testing.T) {
	port := dbtest.SilentServer(t)
	for _, e := range engines(t) {
		for _, c := range []struct {
			name     string
			timeout  time.Duration // DB_CONNECT_TIMEOUT
			deadline time.Duration // of the invocation; 0: none
		}{
			{name: "deadline shorter than DB_CONNECT_TIMEOUT", timeout: time.Hour, deadline: 1500 * time.Millisecond},
			{name: "no deadline", timeout: time.Second},
		} {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				h := dbtest.NewHarness(t, e.target(t, func(cfg *dbtarget.Config) { cfg.ConnectTimeout = c.timeout }))
				arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, "app", dbtest.Password(), map[string]any{"host": "127.0.0.1", "port": port})))
				token := h.Open(arn)
				if err := h.Step(nil, "createSecret", arn, token); err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if c.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, c.deadline)
					defer cancel()
				}
				done := make(chan error, 1)
				go func() { done <- h.StepContext(ctx, nil, "setSecret", arn, token) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(2 * time.Minute): // a bound on a hang, not a measurement
					t.Fatal("setSecret still waits on a server that never answers")
				}
				if !errors.Is(err, dbsecret.ErrCannotReach) {
					t.Fatalf("want a cannot-reach error, got %v", err)
				}
				if !strings.Contains(h.Logs(), `"msg":"rotation step failed"`) || !strings.Contains(h.Logs(), `"step":"setSecret"`) {
					t.Fatalf("no failure log line for setSecret:\n%s", h.Logs())
				}
			})
		}
	}
}
