package testbed

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// Calls counts the AWS calls sent through every client that carries its
// middleware, by service and operation ("Secrets Manager.GetSecretValue").
// It counts at the client, so the calls a target makes with its own clients
// (a master secret read, a CA secret read) count as well as the engine's.
// Only calls that were sent are counted, whatever their answer.
type Calls struct {
	mu     sync.Mutex
	counts map[string]int
}

// Config returns a copy of cfg whose clients are counted by c.
func (c *Calls) Config(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	// Clip: Copy shares the APIOptions array, which append must not write into.
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), c.middleware)
	return cfg
}

func (c *Calls) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			key := middleware.GetServiceID(ctx) + "." + middleware.GetOperationName(ctx)
			c.mu.Lock()
			if c.counts == nil {
				c.counts = map[string]int{}
			}
			c.counts[key]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// Take returns the counts since the last Take and starts again from zero.
func (c *Calls) Take() CallCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := CallCounts(c.counts)
	c.counts = nil
	if out == nil {
		out = CallCounts{}
	}
	return out
}

// CallCounts are counted calls by "<service id>.<operation>".
type CallCounts map[string]int

// Service returns the number of calls to the service with that SDK
// service id ("Secrets Manager", "KMS", "IAM", ...).
func (cc CallCounts) Service(id string) int {
	n := 0
	for k, v := range cc {
		if strings.HasPrefix(k, id+".") {
			n += v
		}
	}
	return n
}

// String lists the operations and their counts, sorted.
func (cc CallCounts) String() string {
	keys := make([]string, 0, len(cc))
	for k := range cc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, cc[k])
	}
	return strings.Join(parts, " ")
}

// SecretsManager is the SDK service id of Secrets Manager.
const SecretsManager = "Secrets Manager"

// StepCalls runs the steps in order through run, counting the Secrets
// Manager calls of each with c. It fails the test if a step fails.
func StepCalls(t testing.TB, c *Calls, steps []string, run func(step string) error) map[string]int {
	t.Helper()
	c.Take()
	per := map[string]int{}
	for _, step := range steps {
		if err := run(step); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		taken := c.Take()
		per[step] = taken.Service(SecretsManager)
		t.Logf("%-12s %d Secrets Manager calls (%s)", step, per[step], taken)
	}
	return per
}

// AssertCalls fails the test when a step made another number of calls
// than want says, or all steps together more than budget (the most a
// rotation may make). Exact counts per step make any change visible: a
// call added or saved shows up here, and the README's tables come from
// these tests.
func AssertCalls(t testing.TB, what string, got, want map[string]int, budget int) {
	t.Helper()
	sum := 0
	for step, n := range got {
		sum += n
		if n != want[step] {
			t.Errorf("%s: %s made %d Secrets Manager calls, want %d", what, step, n, want[step])
		}
	}
	if sum > budget {
		t.Errorf("%s: a rotation made %d Secrets Manager calls, budget %d", what, sum, budget)
	}
	t.Logf("%s: %d Secrets Manager calls per rotation (budget %d): %v", what, sum, budget, got)
}

// CallBudget is what a whole rotation of one function may cost in Secrets
// Manager calls, per step: Warm when one function instance runs the four
// steps (as Lambda does when Secrets Manager invokes them one after the
// other), Cold when each step runs in a fresh instance that remembers
// nothing. Max bounds the warm total (the budget of issue 14).
type CallBudget struct {
	Warm, Cold map[string]int
	Max        int
}

// AssertRotationCalls rotates arn three times with engines from newEngine,
// whose Secrets Manager client must be counted by calls: once unmeasured,
// so that the secret has an AWSPREVIOUS version as in its steady state;
// once warm (one engine for the four steps); once cold (a new engine per
// step). It checks each step's calls against b and returns the warm counts.
func AssertRotationCalls(t testing.TB, em *localrun.Emulator, calls *Calls, arn string, newEngine func() *rotation.Engine, b CallBudget) map[string]int {
	t.Helper()
	if _, err := em.Rotate(context.Background(), arn, localrun.InvokerFunc(newEngine().Handle), localrun.Options{Attempts: 1}); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	var warm map[string]int
	for _, cold := range []bool{false, true} {
		token := localrun.NewToken()
		if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		e := newEngine()
		got := StepCalls(t, calls, localrun.Steps, func(step string) error {
			if cold {
				e = newEngine()
			}
			return e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
		})
		if cold {
			total := 0
			for _, n := range b.Cold {
				total += n
			}
			AssertCalls(t, "cold", got, b.Cold, total)
		} else {
			warm = got
			AssertCalls(t, "warm", got, b.Warm, b.Max)
		}
		if err := em.CloseRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		if ValueAt(t, em, arn, "AWSCURRENT") != ValueOf(t, em, arn, token) {
			t.Fatalf("the rotation did not end with its version current")
		}
	}
	return warm
}
