package testbed

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
)

// ErrCrash is the error of every call a Crasher stops.
var ErrCrash = errors.New("simulated crash")

// Crasher simulates a function that dies right after its K-th AWS call: the
// K-th call takes effect on the emulator and then fails with ErrCrash, and
// every later call fails with ErrCrash without being sent. K = 0 dies before
// the first call. All the clients that carry one Crasher's middleware share
// its count, so calls to several services (Secrets Manager and KMS, say)
// count together, in the order they are made.
//
// Crash tests use it to kill a step after each of its calls in turn, rerun
// the step in a fresh engine and check that the rotation converges.
type Crasher struct {
	// K is the number of the call after which the function dies.
	K int
	// Ops lists the operation names of the calls that were sent, in
	// order: the last one is the call the function died after.
	Ops []string

	mu    sync.Mutex
	calls int
}

// Middleware adds the crash to a client's middleware stack. Put it in a
// client's APIOptions, with a retryer that does not retry (aws.NopRetryer),
// so that a failed call is not sent again.
func (c *Crasher) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("crashAfter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.calls++
			n := c.calls
			if n <= c.K {
				c.Ops = append(c.Ops, middleware.GetOperationName(ctx))
			}
			c.mu.Unlock()
			if n > c.K {
				return middleware.InitializeOutput{}, middleware.Metadata{}, ErrCrash
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil && n == c.K {
				err = ErrCrash
			}
			return out, md, err
		}), middleware.Before)
}

// Config returns a copy of cfg whose clients crash: it carries the
// middleware and never retries. Every client made from it shares this
// Crasher's count.
func (c *Crasher) Config(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	// Clip: Copy shares the APIOptions array, which append must not write into.
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), c.Middleware)
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}
