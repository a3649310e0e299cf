package directory_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSilentServerEndsTheStep: a directory, or a KDC, that accepts
// connections and never answers must end setSecret with the step's failure
// log line, within the invocation's deadline whatever DIRECTORY_TIMEOUT
// says, and within DIRECTORY_TIMEOUT when the invocation has no deadline;
// otherwise Lambda kills the function ("Task timed out") before it logs
// anything. gokrb5 takes no context: KerberosLogin stops waiting for it at
// the deadline (its exchange then ends on gokrb5's own network timeout).
func TestSilentServerEndsTheStep(t *testing.T) {
	port := strconv.Itoa(dbtest.SilentServer(t))
	slapd, samba := slapdServer(t), sambaServer(t)
	for _, c := range []struct {
		name     string
		s        server
		env      []string
		timeout  string        // DIRECTORY_TIMEOUT
		deadline time.Duration // of the invocation; 0: none
	}{
		{"silent directory, deadline shorter than DIRECTORY_TIMEOUT", slapd, []string{"DIRECTORY_URL", "ldaps://127.0.0.1:" + port}, "1h", 1500 * time.Millisecond},
		{"silent directory, no deadline", slapd, []string{"DIRECTORY_URL", "ldaps://127.0.0.1:" + port}, "1s", 0},
		{"silent KDC, deadline shorter than DIRECTORY_TIMEOUT", samba, []string{"DIRECTORY_KERBEROS_KDCS", "127.0.0.1:" + port}, "1h", 1500 * time.Millisecond},
		{"silent KDC, no deadline", samba, []string{"DIRECTORY_KERBEROS_KDCS", "127.0.0.1:" + port}, "1s", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.s.config(t, append(c.env, "DIRECTORY_TIMEOUT", c.timeout)...)
			h := dbtest.NewHarness(t, target(cfg, testbed.AWSConfig(t)))
			f := c.s.newFixture(t, h.Em, single, nil)
			token := h.Open(f.arn)
			if err := h.Step(nil, "createSecret", f.arn, token); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if c.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.deadline)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { done <- h.StepContext(ctx, nil, "setSecret", f.arn, token) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(2 * time.Minute): // a bound on a hang, not a measurement
				t.Fatal("setSecret still waits on a server that never answers")
			}
			if !errors.Is(err, account.ErrCannotReach) && !errors.Is(err, rotation.ErrDeadline) {
				t.Fatalf("want a cannot-reach or deadline error, got %v", err)
			}
			if !strings.Contains(h.Logs(), `"msg":"rotation step failed"`) || !strings.Contains(h.Logs(), `"step":"setSecret"`) {
				t.Fatalf("no failure log line for setSecret:\n%s", h.Logs())
			}
			if err := c.s.login(t, f.base, f.password); err != nil {
				t.Fatalf("the account's password changed: %v", err)
			}
		})
	}
}
