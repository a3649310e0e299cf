package rabbitmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
)

const clients, rotations = 4, 5

// TestZeroDowntimeAlternatingUsers: AMQP clients keep opening connections
// with the secret's AWSCURRENT (re-read every 5 ms, as a caching client
// would) while rotations of an alternating-users secret run back to back
// through the engine. No login is refused: not as the clients see it, not
// by the broker's own counter of failed AMQP authentications, not in its
// log.
func TestZeroDowntimeAlternatingUsers(t *testing.T) {
	b := newBed(t)
	h := dbtest.NewHarness(t, b.target(t, nil))
	arn, user, _ := b.rotated(t, h.Em, "zd_", false)
	failedBefore, log := b.FailedLogins(t), b.LogFrom(t)
	st, took := underLoad(t, b, h, arn, func() {
		for i := range rotations {
			if _, err := h.Rotate(arn); err != nil {
				t.Fatalf("rotation %d under load: %v", i+1, err)
			}
		}
	})
	failed := b.FailedLogins(t) - failedBefore
	logged := refusedFor(log.Until(t, b.Server), user, user+rabbitmq.CloneSuffix)
	t.Logf("rabbitmq alternating users: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors; broker: %d failed authentications, %d refusals logged",
		st.Clients, rotations, took.Round(time.Millisecond), st.Logins, st.Refused, st.OtherErrors, failed, logged)
	if st.Refused != 0 || st.OtherErrors != 0 || failed != 0 || logged != 0 || st.Logins < 50 {
		t.Fatalf("want zero refused logins out of at least 50, client side and server side: %s (last error %v); broker %d counted, %d logged",
			st, st.LastError, failed, logged)
	}
}

// TestZeroDowntimeSingleUser measures the window of the single-user
// strategy: only an administrator can set a RabbitMQ user's password, and
// a user holds one, so from setSecret until clients read the new
// AWSCURRENT (finishSecret, then their cache's refresh) the password they
// hold is refused; each refusal costs its client the broker's 3 s delay.
// The test prints the window and the refusals, counted by the clients and
// by the broker (which must agree), and checks that the rotations end
// with AWSCURRENT logging in. Alternating users have no window.
func TestZeroDowntimeSingleUser(t *testing.T) {
	b := newBed(t)
	h := dbtest.NewHarness(t, b.target(t, nil))
	arn, user, _ := b.rotated(t, h.Em, "zd1_", true)
	failedBefore, log := b.FailedLogins(t), b.LogFrom(t)
	var window time.Duration
	st, took := underLoad(t, b, h, arn, func() {
		for i := range rotations {
			token := h.Open(arn)
			var setDone time.Time
			for _, step := range localrun.Steps {
				if err := h.Step(nil, step, arn, token); err != nil {
					t.Fatalf("rotation %d under load, %s: %v", i+1, step, err)
				}
				switch step {
				case rotation.StepSet:
					setDone = time.Now()
				case rotation.StepFinish:
					window += time.Since(setDone)
				}
			}
			if err := h.Em.CloseRotation(context.Background(), arn, token); err != nil {
				t.Fatal(err)
			}
		}
	})
	failed := b.FailedLogins(t) - failedBefore
	logged := refusedFor(log.Until(t, b.Server), user)
	t.Logf("rabbitmq single user: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors; broker: %d failed authentications, %d refusals logged; window setSecret→finishSecret %v per rotation",
		st.Clients, rotations, took.Round(time.Millisecond), st.Logins, st.Refused, st.OtherErrors, failed, logged, (window / rotations).Round(time.Millisecond))
	if st.OtherErrors != 0 || st.Logins < 20 {
		t.Fatalf("the load did not run as it should: %s (last error %v)", st, st.LastError)
	}
	if failed != st.Refused || int64(logged) != st.Refused {
		t.Fatalf("refused logins: clients %d, broker counter %d, broker log %d: the counts must agree", st.Refused, failed, logged)
	}
	if err := b.login(t, h.Current(arn)); err != nil {
		t.Fatalf("AWSCURRENT does not log in after the rotations: %v", err)
	}
}

// underLoad runs rotate while AMQP clients log in with the secret's
// AWSCURRENT, and returns what the clients saw and how long rotate took.
func underLoad(t *testing.T, b *bed, h *dbtest.Harness, arn string, rotate func()) (loadtest.Stats, time.Duration) {
	t.Helper()
	read := loadtest.FromSecret(h.Em.SM, arn, "AWSCURRENT")
	run, err := loadtest.Start(context.Background(), read, rabbitmqtest.Login(b.Endpoint(t)), loadtest.Options{Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the clients are logging in
	start := time.Now()
	rotate()
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	return run.Stop(), took
}
