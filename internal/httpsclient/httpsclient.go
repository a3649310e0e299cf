// Package httpsclient makes the HTTP clients that carry a credential to a
// server named by the function's configuration (generic's verification
// endpoint, a key provider's API): TLS is always verified, at version 1.2 at
// least, against the system roots plus an optional PEM file; redirects are
// never followed, so that a credential cannot be carried to another host;
// and errors name the endpoint without its query, which may hold a token of
// its own.
package httpsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// LoadRoots returns the system roots plus the certificates of the PEM file.
func LoadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		// Without system roots the file alone is still a sound trust store.
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Transport returns a transport that verifies the server against roots (nil
// means the system roots); verification is never skipped.
func Transport(roots *x509.CertPool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return tr
}

// New returns a client over rt (Transport(roots), or a wrapper of it) that
// refuses redirects: a 3xx answer is returned as it is, and the caller
// treats it as a failure. timeout bounds each request; zero means none
// beyond the request's context.
func New(rt http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: rt,
		Timeout:   timeout,
		// A redirect could carry the credential to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Display returns u without user information, query and fragment, for
// errors and logs.
func Display(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	return c.String()
}

// Cause strips the *url.Error that http.Client wraps around every failure:
// it repeats the full URL, query included.
func Cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// IsRedirect reports whether status is a redirect, which these clients do
// not follow.
func IsRedirect(status int) bool { return status >= 300 && status < 400 }
