package postgres

import (
	"encoding/binary"
	"fmt"
	"io"
)

// The authentication request codes of the PostgreSQL protocol
// (AuthenticationXxx messages, type 'R').
const (
	authOK           = 0
	authKerberosV5   = 2
	authCleartext    = 3
	authMD5          = 5
	authSCM          = 6
	authGSS          = 7
	authGSSContinue  = 8
	authSSPI         = 9
	authSASL         = 10
	authSASLContinue = 11
	authSASLFinal    = 12
)

// RefusedAuthError is the error of a connection whose server asked for the
// password in a form the function refuses. It happens before any byte of
// the password leaves: a server that asks for a cleartext or MD5 password
// is either misconfigured or someone collecting passwords.
type RefusedAuthError struct {
	// Form says what the server asked for, e.g. "in cleartext".
	Form string
}

func (e *RefusedAuthError) Error() string {
	return fmt.Sprintf("the server asked for the password %s, a form this function refuses (it authenticates only with SCRAM-SHA-256): no password was sent", e.Form)
}

func authForm(code uint32) string {
	switch code {
	case authCleartext:
		return "in cleartext"
	case authMD5:
		return "as an MD5 hash"
	case authKerberosV5, authGSS, authGSSContinue, authSSPI:
		return "through Kerberos/GSSAPI/SSPI"
	case authSCM:
		return "through SCM credentials"
	}
	return fmt.Sprintf("with authentication request %d", code)
}

// authGuard reads the server's messages on their way to pgx during the
// start-up, and fails the read that carries any authentication request
// other than SASL (SCRAM). pgx's require_auth=scram-sha-256 refuses the
// same requests; the guard runs first, so that the refusal does not depend
// on one library check alone and comes back as a RefusedAuthError that
// Connect classifies with errors.As. After AuthenticationOk it only passes
// bytes through.
type authGuard struct {
	r       io.Reader
	done    bool
	refused *RefusedAuthError

	hdr      [5]byte // type and length of the message being read
	hdrN     int
	bodyLeft int     // bytes of its body not read yet
	isAuth   bool    // the message is an authentication request
	code     [4]byte // its request code
	codeN    int
}

func (g *authGuard) Read(p []byte) (int, error) {
	if g.refused != nil {
		return 0, g.refused
	}
	n, err := g.r.Read(p)
	if !g.done && n > 0 {
		if g.scan(p[:n]) {
			// Drop what was read: pgx must not act on the request.
			return 0, g.refused
		}
	}
	return n, err
}

// scan follows the message framing through b and reports whether b holds
// a refused authentication request.
func (g *authGuard) scan(b []byte) bool {
	for len(b) > 0 && !g.done {
		if g.hdrN < len(g.hdr) {
			k := copy(g.hdr[g.hdrN:], b)
			g.hdrN += k
			b = b[k:]
			if g.hdrN < len(g.hdr) {
				return false
			}
			size := int(binary.BigEndian.Uint32(g.hdr[1:]))
			if size < 4 {
				// Not PostgreSQL framing: pgx reports it.
				g.done = true
				return false
			}
			g.bodyLeft = size - 4
			g.isAuth = g.hdr[0] == 'R' && g.bodyLeft >= 4
			g.codeN = 0
		}
		if g.isAuth && g.codeN < len(g.code) {
			k := copy(g.code[g.codeN:], b)
			g.codeN += k
			g.bodyLeft -= k
			b = b[k:]
			if g.codeN == len(g.code) {
				switch code := binary.BigEndian.Uint32(g.code[:]); code {
				case authSASL, authSASLContinue, authSASLFinal:
				case authOK:
					g.done = true
				default:
					g.refused = &RefusedAuthError{Form: authForm(code)}
					return true
				}
			}
		}
		k := min(g.bodyLeft, len(b))
		g.bodyLeft -= k
		b = b[k:]
		if g.bodyLeft == 0 && (!g.isAuth || g.codeN == len(g.code)) {
			g.hdrN = 0
		}
	}
	return false
}
