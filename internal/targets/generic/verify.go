package generic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
)

// verifier sends the pending value to VERIFY_URL.
type verifier struct {
	method string
	url    *url.URL
	// display names the endpoint in errors: the URL without its query,
	// which may hold a token of its own.
	display string
	header  string
	client  *http.Client
}

func newVerifier(cfg Config) (*verifier, error) {
	roots := cfg.roots
	if roots == nil && cfg.VerifyCAFile != "" {
		var err error
		if roots, err = loadRoots(cfg.VerifyCAFile); err != nil {
			return nil, err
		}
	}
	return &verifier{
		method:  cfg.VerifyMethod,
		url:     cfg.VerifyURL,
		display: httpsclient.Display(cfg.VerifyURL),
		header:  cfg.VerifyHeader,
		// A redirect is returned as its 3xx, which fails the verification.
		client: httpsclient.New(httpsclient.Transport(roots), cfg.VerifyTimeout),
	}, nil
}

// verify sends value to the endpoint and requires a 2xx answer. No error
// contains the value or the response body, which might echo it.
func (v *verifier) verify(ctx context.Context, value string) error {
	if value == "" {
		return errors.New("verify: the pending value is empty")
	}
	if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return errors.New("verify: the pending value contains control characters, which an HTTP header cannot carry")
	}
	req, err := http.NewRequestWithContext(ctx, v.method, v.url.String(), nil)
	if err != nil {
		return fmt.Errorf("verify: build %s %s request: %w", v.method, v.display, err)
	}
	if v.header == "" {
		req.Header.Set("Authorization", "Bearer "+value)
	} else {
		req.Header.Set(v.header, value)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("verify: %s %s: %w", v.method, v.display, httpsclient.Cause(err))
	}
	// Drain a little so the connection can be reused, and no more: the body
	// is never read into memory or into an error.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("verify: %s %s answered %d %s, want 2xx", v.method, v.display, resp.StatusCode, http.StatusText(resp.StatusCode))
		if httpsclient.IsRedirect(resp.StatusCode) {
			msg += " (redirects are not followed)"
		}
		return errors.New(msg)
	}
	return nil
}
