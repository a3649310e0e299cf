package generic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// RootCAs nil means the system roots; verification is never skipped.
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	u := *cfg.VerifyURL
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	return &verifier{
		method:  cfg.VerifyMethod,
		url:     cfg.VerifyURL,
		display: u.Redacted(),
		header:  cfg.VerifyHeader,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.VerifyTimeout,
			// A redirect could carry the value to another host; returning
			// the 3xx makes it a failed verification instead.
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
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
		// *url.Error repeats the full URL, query included; keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("verify: %s %s: %w", v.method, v.display, err)
	}
	// Drain a little so the connection can be reused, and no more: the body
	// is never read into memory or into an error.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("verify: %s %s answered %d %s, want 2xx", v.method, v.display, resp.StatusCode, http.StatusText(resp.StatusCode))
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			msg += " (redirects are not followed)"
		}
		return errors.New(msg)
	}
	return nil
}
