package testbed

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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

// next counts one call named op and says whether it is sent, and whether
// the function dies right after it.
func (c *Crasher) next(op string) (send, die bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	n := c.calls
	if n <= c.K {
		c.Ops = append(c.Ops, op)
	}
	return n <= c.K, n == c.K
}

// Do runs call, one call of the function to a server that is neither AWS
// nor HTTP (an LDAP bind or modify, a Kerberos exchange), named op, in c's
// one sequence of calls: it is not run once the function has died, and
// when it is the K-th call it takes effect and then the function dies, Do
// returning ErrCrash. Crash tests wrap a target's own calls in Do so that
// the function dies after each of those calls too.
func (c *Crasher) Do(op string, call func() error) error {
	send, die := c.next(op)
	if !send {
		return ErrCrash
	}
	err := call()
	if err == nil && die {
		return ErrCrash
	}
	return err
}

// Transport returns a transport over next whose requests count with the AWS
// calls of c, in one sequence: the K-th call of either kind takes effect
// (the request reaches the server, which answers) and then fails with
// ErrCrash, and no later request is sent. Crash tests of a function that
// calls a third-party HTTP API as well as AWS use it to die after each of
// those calls too. Its operation names are "METHOD /path".
func (c *Crasher) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		send, die := c.next(req.Method + " " + req.URL.Path)
		if !send {
			return nil, ErrCrash
		}
		resp, err := next.RoundTrip(req)
		if err == nil && die {
			// The server has acted; the function never sees its answer.
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil, ErrCrash
		}
		return resp, err
	})
}

// DialContext returns a dial function over next whose connections count
// with the calls of c, in the same sequence: the login of a protocol other
// than HTTP (AMQP, LDAP, Redis) is an external call too. Its operation
// names are "dial <addr>". A dial that comes after the K-th call is not
// made (ErrCrash). The K-th call itself, when it is a dial, connects and
// the login goes on, but the function makes no call after it: a login
// changes nothing, so dying right after it is dying before the next call,
// or, when the step makes none, finishing and dying before returning.
func (c *Crasher) DialContext(next func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if send, _ := c.next("dial " + addr); !send {
			return nil, ErrCrash
		}
		return next(ctx, network, addr)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Middleware adds the crash to a client's middleware stack. Put it in a
// client's APIOptions, with a retryer that retries nothing but the
// transport race closedConnRetryer describes (Config does both), so that a
// call the server refused is not sent again.
func (c *Crasher) Middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("crashAfter",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			send, die := c.next(middleware.GetOperationName(ctx))
			if !send {
				return middleware.InitializeOutput{}, middleware.Metadata{}, ErrCrash
			}
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil && die {
				err = ErrCrash
			}
			return out, md, err
		}), middleware.Before)
}

// Config returns a copy of cfg whose clients crash: it carries the
// middleware and retries nothing but the transport race below. Every client
// made from it shares this Crasher's count.
func (c *Crasher) Config(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	// Clip: Copy shares the APIOptions array, which append must not write into.
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), c.Middleware)
	cfg.Retryer = closedConnRetryer
	// A fresh connection per call: a call that is never retried must not
	// fail on a kept-alive connection the emulator closed meanwhile (moto's
	// server does), which a normal client's retry would hide.
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DisableKeepAlives = true
	})
	return cfg
}

// closedConnRetryer retries a call only when its connection was closed
// under it on the client's side ("use of closed network connection"). That
// is a race inside Go's HTTP transport, not a failure of the server: the
// server answers and closes while the transport's writer still checks the
// request body, which the SDK has closed on getting the answer, and the
// writer then closes the connection before the answer is read
// (aws/aws-sdk-go-v2#2737; moto, which closes every connection, meets it
// most). The SDK's standard retryer retries it, as a deployed function
// does; the crash tests must too, or they fail on the race. Nothing else
// is retried, so a call the Crasher stops is never sent again, and the
// Crasher counts a retried call once (its middleware runs before the retry
// loop).
func closedConnRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 3
		o.MaxBackoff = 50 * time.Millisecond
		o.RateLimiter = ratelimit.None
		o.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "use of closed network connection") {
				return aws.TrueTernary
			}
			return aws.FalseTernary
		})}
	})
}
