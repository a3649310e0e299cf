package directory

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"time"
)

// Kind is the password protocol a directory speaks.
type Kind string

const (
	// LDAP is an RFC 4511 directory (OpenLDAP, 389 Directory Server ...):
	// passwords change through the Password Modify extended operation
	// (RFC 3062) and are tested by a bind.
	LDAP Kind = "ldap"
	// ActiveDirectory is Microsoft Active Directory or a Samba AD DC:
	// passwords change through the unicodePwd attribute over LDAPS and are
	// tested by a bind and a Kerberos ticket-granting ticket.
	ActiveDirectory Kind = "activedirectory"
)

// Security is how the connection is protected.
type Security string

const (
	// LDAPS is TLS from the first byte (port 636 by default). The default.
	LDAPS Security = "ldaps"
	// StartTLS upgrades a plain connection (port 389 by default) before
	// any credential is sent.
	StartTLS Security = "starttls"
	// Plaintext sends the password unencrypted. Only when the secret asks
	// for it and the function's configuration allows it (ParseSecurity),
	// and never to Active Directory.
	Plaintext Security = "plaintext"
)

// ErrPlaintextRefused is wrapped by the error of a plaintext connection
// that the configuration does not allow.
var ErrPlaintextRefused = errors.New("plaintext LDAP with a password is not allowed")

// ParseSecurity turns a secret's requested protection into a Security:
// "" and "ldaps" are LDAPS, "starttls" is StartTLS, "plaintext" is
// Plaintext only when allowPlaintext (the function's configuration) is
// true. Anything else is an error naming the value.
func ParseSecurity(requested string, allowPlaintext bool) (Security, error) {
	switch Security(requested) {
	case "", LDAPS:
		return LDAPS, nil
	case StartTLS:
		return StartTLS, nil
	case Plaintext:
		if !allowPlaintext {
			return "", fmt.Errorf("%w: the secret asks for plaintext but the function's configuration does not allow it", ErrPlaintextRefused)
		}
		return Plaintext, nil
	}
	return "", fmt.Errorf("unknown LDAP security %q: want ldaps, starttls or plaintext", requested)
}

// Kerberos is where Active Directory's KDCs are, for testing a password by
// obtaining a ticket-granting ticket.
type Kerberos struct {
	// Realm is the Kerberos realm (the AD domain's DNS name in capitals).
	Realm string
	// KDCs are host:port addresses, tried in random order (gokrb5 tries
	// each once).
	KDCs []string
}

// Endpoint is one directory server and how to talk to it. The caller builds
// it from the function's configuration, never from a secret's content alone:
// it decides where a password is sent.
type Endpoint struct {
	Kind Kind
	Host string
	// Port 0 is the default of the Security: 636 for LDAPS, 389 otherwise.
	Port     int
	Security Security
	// TLS verifies the server; its ServerName must be set (Host, or the
	// name in the server's certificate). Required unless Plaintext.
	TLS *tls.Config
	// AllowPlaintext is the function's configuration allowing a plaintext
	// password; a Plaintext endpoint without it is refused when connecting,
	// whatever built it.
	AllowPlaintext bool
	// Timeout bounds each network round trip (dial, handshake, request);
	// the context bounds the whole call. 0 means 10 seconds.
	Timeout time.Duration
	// Kerberos is required for Active Directory: Probe obtains a TGT.
	Kerberos Kerberos
}

// Addr is host:port.
func (e Endpoint) Addr() string {
	port := e.Port
	if port == 0 {
		port = 389
		if e.Security == LDAPS || e.Security == "" {
			port = 636
		}
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(port))
}

// String names the endpoint for logs and errors: scheme, host and port.
func (e Endpoint) String() string {
	scheme := "ldap"
	if e.Security == LDAPS || e.Security == "" {
		scheme = "ldaps"
	}
	return scheme + "://" + e.Addr()
}

func (e Endpoint) timeout() time.Duration {
	if e.Timeout <= 0 {
		return 10 * time.Second
	}
	return e.Timeout
}

var (
	realmRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)
	kdcRE   = regexp.MustCompile(`^[A-Za-z0-9.:\[\]-]+$`)
)

// Validate reports a setting that cannot work, or that would send a
// password where it must not go.
func (e Endpoint) Validate() error {
	if e.Host == "" {
		return errors.New("directory endpoint: host is empty")
	}
	if e.Port < 0 || e.Port > 65535 {
		return fmt.Errorf("directory endpoint: port %d is out of range", e.Port)
	}
	switch e.Kind {
	case LDAP, ActiveDirectory:
	default:
		return fmt.Errorf("directory endpoint: unknown kind %q: want %s or %s", e.Kind, LDAP, ActiveDirectory)
	}
	switch e.Security {
	case "", LDAPS, StartTLS:
		if e.TLS == nil {
			return fmt.Errorf("directory endpoint %s: %s needs a TLS configuration", e, e.security())
		}
		if e.TLS.InsecureSkipVerify {
			return fmt.Errorf("directory endpoint %s: TLS verification is off", e)
		}
		if e.TLS.ServerName == "" {
			return fmt.Errorf("directory endpoint %s: TLS ServerName is empty", e)
		}
	case Plaintext:
		if !e.AllowPlaintext {
			return fmt.Errorf("directory endpoint %s: %w by the function's configuration", e, ErrPlaintextRefused)
		}
	default:
		return fmt.Errorf("directory endpoint: unknown security %q", e.Security)
	}
	if e.Kind == ActiveDirectory {
		// Active Directory accepts a unicodePwd change only over an
		// encrypted connection; LDAPS is what it documents.
		if e.security() != LDAPS {
			return fmt.Errorf("directory endpoint %s: Active Directory passwords change over LDAPS only, not %s", e, e.security())
		}
		if !realmRE.MatchString(e.Kerberos.Realm) {
			return fmt.Errorf("directory endpoint %s: Kerberos realm %q is not a realm name", e, e.Kerberos.Realm)
		}
		if len(e.Kerberos.KDCs) == 0 {
			return fmt.Errorf("directory endpoint %s: no Kerberos KDC for realm %s", e, e.Kerberos.Realm)
		}
		for _, k := range e.Kerberos.KDCs {
			if !kdcRE.MatchString(k) {
				return fmt.Errorf("directory endpoint %s: Kerberos KDC %q is not host[:port]", e, k)
			}
		}
	}
	return nil
}

func (e Endpoint) security() Security {
	if e.Security == "" {
		return LDAPS
	}
	return e.Security
}
