package dbsecret

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
)

// Endpoint is where and how to connect.
type Endpoint struct {
	Engine string
	Host   string
	Port   int
	DBName string
	// TLS is nil only when the secret says "ssl": false, and never for
	// master credentials.
	TLS     *tls.Config
	Timeout time.Duration
}

// String names the endpoint for logs and errors.
func (e Endpoint) String() string {
	return fmt.Sprintf("%s:%d", e.Host, e.Port)
}

// TLSConfig returns the TLS configuration for host: the server certificate
// and host name are verified against the system roots plus the PEM files
// given. ssl false returns nil: plaintext, and only when asked for.
func TLSConfig(ssl bool, host string, caFiles ...string) (*tls.Config, error) {
	if !ssl {
		return nil, nil
	}
	return account.TLSConfig(host, caFiles...)
}

// The classification of connection errors is the account layer's; these
// names keep the database drivers' spelling.
var (
	// ErrCannotLogIn: the server refused the credentials.
	ErrCannotLogIn = account.ErrCannotLogIn
	// ErrCannotReach: the server did not judge the credentials (network,
	// time-out, TLS).
	ErrCannotReach = account.ErrCannotReach
)

// ConnError is a classified connection failure (account.ConnError).
type ConnError = account.ConnError
