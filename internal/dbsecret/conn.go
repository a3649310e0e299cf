package dbsecret

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// Endpoint is where and how to connect.
type Endpoint struct {
	Engine string
	Host   string
	Port   int
	DBName string
	// TLS is nil only when the secret says "ssl": false.
	TLS     *tls.Config
	Timeout time.Duration
}

// String names the endpoint for logs and errors.
func (e Endpoint) String() string {
	return fmt.Sprintf("%s:%d", e.Host, e.Port)
}

// TLSConfig returns the TLS configuration for host: the server certificate
// and host name are verified against the system roots plus the PEM files
// given (the function's DB_CA_BUNDLE and the secret's ca_bundle). ssl false
// returns nil: plaintext, and only when asked for.
func TLSConfig(ssl bool, host string, caFiles ...string) (*tls.Config, error) {
	if !ssl {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range caFiles {
		if f == "" {
			continue
		}
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f)
		}
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}

// ErrCannotLogIn is wrapped by a connection error that the server gave
// because of the credentials: wrong password or unknown user.
var ErrCannotLogIn = errors.New("cannot log in")

// ErrCannotReach is wrapped by a connection error that happened before the
// server judged the credentials: no route, refused, timeout, TLS failure.
var ErrCannotReach = errors.New("cannot reach")

// ConnError is a classified connection failure. Its message names the user
// and endpoint, never a password.
type ConnError struct {
	Kind     error // ErrCannotLogIn or ErrCannotReach
	User     string
	Endpoint string
	Err      error
}

func (e *ConnError) Error() string {
	if e.Kind == ErrCannotLogIn {
		return fmt.Sprintf("cannot log in as %s at %s: %v", e.User, e.Endpoint, e.Err)
	}
	return fmt.Sprintf("cannot reach %s (as %s): %v", e.Endpoint, e.User, e.Err)
}

// Unwrap lets errors.Is match the kind and errors.As the cause.
func (e *ConnError) Unwrap() []error { return []error{e.Kind, e.Err} }
