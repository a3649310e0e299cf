package testbed

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

// DelayProxy is test equipment for `make bench`: a reverse proxy in front of
// the local AWS API emulator that holds every Secrets Manager request for a
// set time before forwarding it, so that a function under the runtime
// interface emulator sees the round trip of a real Secrets Manager call
// (AWS in-region: about 15 ms) instead of a local emulator's few
// milliseconds. It also counts the Secrets Manager requests it forwards:
// every call a function makes, the target's own included.
//
// Point a function at it with AWS_ENDPOINT_URL_SECRETS_MANAGER; other
// services keep their endpoint and no delay.
type DelayProxy struct {
	// URL is the proxy's endpoint, for AWS_ENDPOINT_URL_SECRETS_MANAGER.
	URL   string
	delay atomic.Int64
	calls atomic.Int64
	srv   *http.Server
}

// StartDelayProxy starts a proxy to the emulator at target (its endpoint
// URL), on a loopback port below 32768, with no delay yet.
func StartDelayProxy(target string) (*DelayProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("delay proxy: target %q is not an endpoint URL", target)
	}
	l, err := localrun.ListenLoopback()
	if err != nil {
		return nil, fmt.Errorf("delay proxy: %w", err)
	}
	p := &DelayProxy{URL: "http://" + l.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The JSON protocol names the operation in X-Amz-Target,
			// "secretsmanager.GetSecretValue" for example.
			if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.") {
				p.calls.Add(1)
				if d := time.Duration(p.delay.Load()); d > 0 {
					select {
					case <-time.After(d):
					case <-r.Context().Done():
						return
					}
				}
			}
			rp.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := p.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("delay proxy:", err)
		}
	}()
	return p, nil
}

// SetDelay sets the time each Secrets Manager request is held.
func (p *DelayProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// Calls returns how many Secrets Manager requests the proxy has forwarded.
func (p *DelayProxy) Calls() int64 { return p.calls.Load() }

// Close stops the proxy.
func (p *DelayProxy) Close() error { return p.srv.Close() }
