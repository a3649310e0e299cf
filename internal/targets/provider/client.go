package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrRateLimited: the provider kept answering 429 until the step's
	// deadline left no time for another attempt.
	ErrRateLimited = errors.New("rate limited by the provider")
	// ErrKeyLimit: the provider refused a new key because the account has
	// as many as it allows.
	ErrKeyLimit = errors.New("the provider's key limit is reached")
)

// ProviderError is a provider's answer that is not a success: which
// request, where, and the status. It never holds the body (logged apart,
// redacted) nor any credential.
type ProviderError struct {
	Request  string // create, activate, test, revoke or list
	Method   string
	Endpoint string // base URL and the configured path, e.g. https://api.example.com/v1/keys/{{key_id}}
	Status   int
}

func (e *ProviderError) Error() string {
	msg := fmt.Sprintf("%s: %s %s answered %d %s", e.Request, e.Method, e.Endpoint, e.Status, http.StatusText(e.Status))
	if httpsclient.IsRedirect(e.Status) {
		msg += " (redirects are not followed)"
	}
	return msg
}

// Limits of the HTTP exchange.
const (
	maxBody        = 1 << 20
	maxAttempts    = 8
	firstBackoff   = 500 * time.Millisecond
	maxRetryAfter  = time.Minute
	minTimeToRetry = 50 * time.Millisecond
)

// caller sends the configured requests.
type caller struct {
	cfg    *Config
	client *http.Client
	log    *slog.Logger
	// sleep waits d or until ctx ends; tests can make it instant.
	sleep func(ctx context.Context, d time.Duration) error
}

// reply is a successful answer.
type reply struct {
	status int
	doc    any // the decoded JSON body, nil if there is none
}

func (r *request) endpoint(base *url.URL) string {
	return httpsclient.Display(base) + r.pathSrc[:len(r.pathSrc)-len(r.querySrc())]
}

func (r *request) querySrc() string {
	if i := strings.IndexByte(r.pathSrc, '?'); i >= 0 {
		return r.pathSrc[i:]
	}
	return ""
}

// build makes the HTTP request from the templates and vs.
func (c *caller) build(ctx context.Context, r *request, vs vars) (*http.Request, error) {
	p, err := r.path.render(vs, escPath)
	if err != nil {
		return nil, fmt.Errorf("%s: path: %w", r.role, err)
	}
	raw := c.cfg.Base.Scheme + "://" + c.cfg.Base.Host + c.cfg.Base.EscapedPath() + p
	if len(r.query.segs) > 0 {
		q, err := r.query.render(vs, escQuery)
		if err != nil {
			return nil, fmt.Errorf("%s: query: %w", r.role, err)
		}
		raw += "?" + q
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host != c.cfg.Base.Host {
		// Unreachable: values are escaped and the origin is fixed. Kept so
		// that no future change can send a key elsewhere.
		return nil, fmt.Errorf("%s: the request would not go to %s", r.role, c.cfg.Base.Host)
	}
	var body io.Reader
	contentType := ""
	switch {
	case r.jsonBody != nil:
		v, err := renderTree(r.jsonBody, vs)
		if err != nil {
			return nil, fmt.Errorf("%s: json body: %w", r.role, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: json body: %w", r.role, err)
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case len(r.form) > 0:
		form := url.Values{}
		for _, f := range r.form {
			v, err := f.t.render(vs, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: form.%s: %w", r.role, f.name, err)
			}
			form.Set(f.name, v)
		}
		body, contentType = strings.NewReader(form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", r.role, httpsclient.Cause(err))
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for _, h := range r.headers {
		v, err := h.t.render(vs, escHeader)
		if err != nil {
			return nil, fmt.Errorf("%s: headers.%s: %w", r.role, h.name, err)
		}
		req.Header.Set(h.name, v)
	}
	if r.user != nil {
		user, err := r.user.render(vs, escHeader)
		if err == nil && strings.Contains(user, ":") {
			err = errors.New("a basic-auth user name cannot contain a colon")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: basic_auth.username: %w", r.role, err)
		}
		pass, err := r.pass.render(vs, escHeader)
		if err != nil {
			return nil, fmt.Errorf("%s: basic_auth.password: %w", r.role, err)
		}
		req.SetBasicAuth(user, pass)
	}
	return req, nil
}

func renderTree(v any, vs vars) (any, error) {
	switch x := v.(type) {
	case template:
		return x.render(vs, nil)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := renderTree(e, vs)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := renderTree(e, vs)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// call sends r and returns its answer when the status is a success (the
// request's expect, or any 2xx), or, for revoke, one of its gone statuses.
// A 429 is retried after the Retry-After the provider asks for (or a
// backoff), as long as the step's deadline leaves time for it.
func (c *caller) call(ctx context.Context, r *request, vs vars) (*reply, error) {
	secrets := vs.secrets()
	for attempt := 1; ; attempt++ {
		req, err := c.build(ctx, r, vs)
		if err != nil {
			return nil, err
		}
		if user, pass, ok := req.BasicAuth(); ok {
			secrets = append(secrets, user+":"+pass)
		}
		status, header, body, err := c.send(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", r.role, r.method, r.endpoint(c.cfg.Base), err)
		}
		if status == http.StatusTooManyRequests {
			wait := retryAfter(header.Get("Retry-After"), attempt)
			left := time.Duration(1<<62 - 1)
			if dl, ok := ctx.Deadline(); ok {
				left = time.Until(dl)
			}
			if attempt >= maxAttempts || wait+minTimeToRetry > left {
				return nil, fmt.Errorf("%s: %s %s: %w: %d attempts; the next was asked for in %s, and the step has %s left",
					r.role, r.method, r.endpoint(c.cfg.Base), ErrRateLimited, attempt, wait.Round(time.Millisecond), left.Round(time.Millisecond))
			}
			c.log.LogAttrs(ctx, slog.LevelWarn, "provider rate limit: retrying",
				slog.String("request", r.role), slog.Int("attempt", attempt), slog.Duration("retry_after", wait))
			if err := c.sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%s: waiting out the rate limit: %w", r.role, err)
			}
			continue
		}
		ok := slices.Contains(r.expect, status) || (len(r.expect) == 0 && status >= 200 && status <= 299)
		if !ok && slices.Contains(r.gone, status) {
			return &reply{status: status}, nil
		}
		if !ok {
			c.log.LogAttrs(ctx, slog.LevelWarn, "provider request failed",
				slog.String("request", r.role), slog.String("method", r.method),
				slog.String("endpoint", r.endpoint(c.cfg.Base)), slog.Int("status", status),
				slog.String("body_redacted", redact(string(body), secrets)))
			return nil, &ProviderError{Request: r.role, Method: r.method, Endpoint: r.endpoint(c.cfg.Base), Status: status}
		}
		rep := &reply{status: status}
		if len(r.ptr) > 0 {
			doc, err := decodeJSON(body)
			if err != nil {
				// encoding/json quotes input: keep only that it failed.
				return nil, fmt.Errorf("%s: %s %s answered %d with a body that is not JSON", r.role, r.method, r.endpoint(c.cfg.Base), status)
			}
			rep.doc = doc
		}
		return rep, nil
	}
}

// send makes one exchange, bounded by the configured timeout.
func (c *caller) send(ctx context.Context, req *http.Request) (int, http.Header, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := c.client.Do(req.WithContext(actx))
	if err != nil {
		return 0, nil, nil, httpsclient.Cause(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", httpsclient.Cause(err))
	}
	if len(body) > maxBody {
		return 0, nil, nil, fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); without
// one it backs off exponentially.
func retryAfter(h string, attempt int) time.Duration {
	h = strings.TrimSpace(h)
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return min(time.Duration(secs)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter)
	}
	return min(firstBackoff<<(attempt-1), maxRetryAfter)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
