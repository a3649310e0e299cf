package rabbitmq_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// crashSpec describes RabbitMQ to the shared crash tests: alternating
// users, or single, a user whose password the master user replaces. In
// CrashAtEveryCall the function dies after each of its calls in turn:
// Secrets Manager's, the management API's requests and the AMQP logins,
// counted in one sequence.
func crashSpec(t testing.TB, single bool) dbtest.CrashSpec {
	b := newBed(t)
	return dbtest.CrashSpec{
		NewTarget: func(cfg aws.Config) rotation.Target {
			return rabbitmq.New(b.config(nil), rabbitmq.Driver{}, secretsmanager.NewFromConfig(cfg))
		},
		NewCrashingTarget: func(cfg aws.Config, c *testbed.Crasher) rotation.Target {
			drv := rabbitmq.Driver{WrapTransport: c.Transport, DialContext: c.DialContext((&net.Dialer{}).DialContext)}
			return rabbitmq.New(b.config(nil), drv, secretsmanager.NewFromConfig(cfg))
		},
		NewSecret: func(t *testing.T, em *localrun.Emulator) string {
			arn, _, _ := b.rotated(t, em, "crash_", single)
			return arn
		},
		Login:                b.login,
		SetPassword:          b.setPassword,
		MasterSetsSingleUser: single,
	}
}

func TestCrashesAlternatingUsers(t *testing.T) { dbtest.Crashes(t, crashSpec(t, false)) }
func TestCrashesSingleUser(t *testing.T)       { dbtest.Crashes(t, crashSpec(t, true)) }
func TestCrashAtEveryCallAlternatingUsers(t *testing.T) {
	spec := crashSpec(t, false)
	spec.EachDirection = true
	dbtest.CrashAtEveryCall(t, spec)
}
func TestCrashAtEveryCallSingleUser(t *testing.T) { dbtest.CrashAtEveryCall(t, crashSpec(t, true)) }
func TestAbandonedAfterSetSecretAlternatingUsers(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t, false))
}
func TestAbandonedAfterSetSecretSingleUser(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t, true))
}
func TestOtherVersionsChecked(t *testing.T) { dbtest.OtherVersionsChecked(t, crashSpec(t, true)) }

// TestCrashWhileMakingTheClone: the first rotation of an alternating
// secret makes the clone, in several management API requests (the user
// with a throw-away password, its permissions, topic permissions and
// limits, then its tags and password). The function dies after each call of
// that setSecret in turn, each time on a fresh user; the clone must never
// log in with AWSPENDING while its rights differ from the user's, and the
// rerun completes it.
func TestCrashWhileMakingTheClone(t *testing.T) {
	b := newBed(t)
	h := dbtest.NewHarness(t, b.target(t, nil))
	for k := 0; ; k++ {
		if k > 40 {
			t.Fatalf("setSecret still crashing after %d calls", k)
		}
		arn, user, _ := b.rotated(t, h.Em, "mkclone_", false)
		clone := user + rabbitmq.CloneSuffix
		b.API(t, http.MethodPut, []string{"api", "topic-permissions", "/", user}, map[string]string{"exchange": "amq.topic", "write": "^a\\.", "read": ".*"})
		b.API(t, http.MethodPut, []string{"api", "user-limits", user, "max-channels"}, map[string]int64{"value": 7})
		token := h.Open(arn)
		if err := h.Step(nil, rotation.StepCreate, arn, token); err != nil {
			t.Fatal(err)
		}
		c := &testbed.Crasher{K: k}
		cfg := c.Config(awsConfig(t))
		drv := rabbitmq.Driver{WrapTransport: c.Transport, DialContext: c.DialContext((&net.Dialer{}).DialContext)}
		hc := dbtest.NewHarness(t, rabbitmq.New(b.config(nil), drv, secretsmanager.NewFromConfig(cfg)))
		err := hc.Step(hc.NewEngine(secretsmanager.NewFromConfig(cfg)), rotation.StepSet, arn, token)
		if err != nil && !errors.Is(err, testbed.ErrCrash) {
			t.Fatalf("setSecret crashed after %d calls %v: %v", k, c.Ops, err)
		}
		if err := b.login(t, h.At(arn, "AWSCURRENT")); err != nil {
			t.Fatalf("after %d calls %v: AWSCURRENT does not log in: %v", k, c.Ops, err)
		}
		pend := h.At(arn, "AWSPENDING")
		if ok, _ := b.admin.HasPassword(context.Background(), clone, pend.Password); ok {
			if o, cl := rightsOf(t, b.admin, user), rightsOf(t, b.admin, clone); !sameRights(o, cl) {
				t.Fatalf("after %d calls %v: the clone logs in with AWSPENDING but its rights\n%+v\ndiffer from the user's\n%+v", k, c.Ops, cl, o)
			}
		}
		for _, step := range localrun.Steps[1:] {
			if err := h.Step(nil, step, arn, token); err != nil {
				t.Fatalf("after %d calls %v, rerun %s: %v", k, c.Ops, step, err)
			}
		}
		if err := h.Em.CloseRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		if err := b.login(t, h.At(arn, "AWSCURRENT")); err != nil {
			t.Fatalf("after %d calls %v: the clone does not log in: %v", k, c.Ops, err)
		}
		if o, cl := rightsOf(t, b.admin, user), rightsOf(t, b.admin, clone); !sameRights(o, cl) {
			t.Fatalf("after %d calls %v: the completed clone's rights\n%+v\ndiffer from the user's\n%+v", k, c.Ops, cl, o)
		}
		if err == nil {
			t.Logf("setSecret completed after %d calls: %v", len(c.Ops), c.Ops)
			break
		}
	}
	h.AssertNoSecretInLogs(b.AdminPassword)
}
