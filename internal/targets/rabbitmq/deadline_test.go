package rabbitmq_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSilentServerEndsTheStep: an AMQP port or a management API that
// accepts connections and never answers must end setSecret with the step's
// failure log line, within the invocation's deadline whatever
// RABBITMQ_CONNECT_TIMEOUT says, and within RABBITMQ_CONNECT_TIMEOUT when
// the invocation has no deadline. Otherwise Lambda kills the function
// ("Task timed out") before it logs anything.
func TestSilentServerEndsTheStep(t *testing.T) {
	b := newBed(t)
	port := dbtest.SilentServer(t)
	for _, c := range []struct {
		name     string
		field    string        // the user secret's port field pointing at the silent server
		timeout  time.Duration // RABBITMQ_CONNECT_TIMEOUT
		deadline time.Duration // of the invocation; 0: none
	}{
		{name: "AMQP, deadline shorter than the timeout", field: "port", timeout: time.Hour, deadline: 1500 * time.Millisecond},
		{name: "AMQP, no deadline", field: "port", timeout: time.Second},
		{name: "management API, deadline shorter than the timeout", field: "management_port", timeout: time.Hour, deadline: 1500 * time.Millisecond},
		{name: "management API, no deadline", field: "management_port", timeout: time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := dbtest.NewHarness(t, b.target(t, func(cfg *rabbitmq.Config) {
				cfg.ConnectTimeout = c.timeout
				cfg.MasterAllowedServers = []string{"127.0.0.1:" + strconv.Itoa(port), b.Host + ":" + strconv.Itoa(b.APIPort)}
			}))
			masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, map[string]any{"username": "admin", "password": "x"}))
			user, pw := b.user(t, "silent_")
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, map[string]any{"masterarn": masterARN, c.field: port})))
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
			if !errors.Is(err, account.ErrCannotReach) {
				t.Fatalf("want a cannot-reach error, got %v", err)
			}
			if !strings.Contains(h.Logs(), `"msg":"rotation step failed"`) || !strings.Contains(h.Logs(), `"step":"setSecret"`) {
				t.Fatalf("no failure log line for setSecret:\n%s", h.Logs())
			}
		})
	}
}
