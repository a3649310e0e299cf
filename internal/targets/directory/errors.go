package directory

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// The reasons a directory refuses a bind or a password change, matched
// with errors.Is on a *Refusal (and on the *dbsecret.ConnError around a
// refused bind).
var (
	// ErrWrongPassword: the password (or, for a change, the old password)
	// is not the account's.
	ErrWrongPassword = errors.New("wrong password")
	// ErrNoSuchAccount: the account does not exist.
	ErrNoSuchAccount = errors.New("no such account")
	// ErrAccountUnusable: the account exists and the password may be right,
	// but it cannot log in: disabled, locked out, expired, or its password
	// expired or must be reset.
	ErrAccountUnusable = errors.New("account cannot log in")
	// ErrPasswordPolicy: the directory's password policy refused the new
	// password (complexity, length, history, minimum age).
	ErrPasswordPolicy = errors.New("password refused by the directory's policy")
	// ErrNotPermitted: the logged-in account may not change this password.
	ErrNotPermitted = errors.New("not permitted to change this password")
)

// Refusal is a directory's (or KDC's) refusal of an operation, in words.
// It never holds a password: Diagnostic is the server's text with the
// call's passwords removed.
type Refusal struct {
	Op       string // "bind", "password change", "password reset", "Kerberos login" ...
	Account  string // the DN (or principal) the operation was about
	Endpoint string
	// Code is the LDAP result code (49 invalidCredentials ...), or the
	// Kerberos error code for a Kerberos login.
	Code int
	// ADCode is Active Directory's detail: the sub-code of a refused bind
	// ("52e") or the Win32 error of a refused change ("0000052D"); empty
	// when the server gave none.
	ADCode     string
	Reason     string
	Diagnostic string
	kind       error
}

func (r *Refusal) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s at %s refused: %s", r.Op, r.Account, r.Endpoint, r.Reason)
	if r.Code != 0 {
		if r.Op == opKerberos {
			fmt.Fprintf(&b, " (Kerberos error %d", r.Code)
		} else {
			fmt.Fprintf(&b, " (LDAP result %d %s", r.Code, ldap.LDAPResultCodeMap[uint16(r.Code)])
		}
		if r.ADCode != "" {
			fmt.Fprintf(&b, ", AD code %s", r.ADCode)
		}
		b.WriteString(")")
	}
	if r.Diagnostic != "" {
		fmt.Fprintf(&b, "; server said: %q", r.Diagnostic)
	}
	return b.String()
}

// Unwrap returns the reason's sentinel (ErrWrongPassword ...), or nil.
func (r *Refusal) Unwrap() error { return r.kind }

const (
	opBind     = "bind"
	opChange   = "password change"
	opReset    = "password reset"
	opKerberos = "Kerberos login"
	opRead     = "read"
)

var (
	// AD's refused bind: "80090308: LdapErr: DSID-0C09042A, comment:
	// AcceptSecurityContext error, data 52e, v3839".
	adDataRE = regexp.MustCompile(`\bdata ([0-9a-fA-F]{1,8})\b`)
	// AD's refused change: "0000052D: Constraint violation - ...".
	adWin32RE = regexp.MustCompile(`^([0-9A-Fa-f]{8}):`)
)

// adBindCodes are AD's sub-codes of invalidCredentials on a bind.
var adBindCodes = map[string]struct {
	kind   error
	reason string
}{
	"525": {ErrNoSuchAccount, "no such account"},
	"52e": {ErrWrongPassword, "wrong password"},
	"530": {ErrAccountUnusable, "the account may not log in at this time"},
	"531": {ErrAccountUnusable, "the account may not log in from this workstation"},
	"532": {ErrAccountUnusable, "the password has expired"},
	"533": {ErrAccountUnusable, "the account is disabled"},
	"568": {ErrAccountUnusable, "the account has too many security identifiers"},
	"701": {ErrAccountUnusable, "the account has expired"},
	"773": {ErrAccountUnusable, "the password must be reset before the account may log in"},
	"775": {ErrAccountUnusable, "the account is locked out"},
}

// adChangeCodes are the Win32 errors AD gives for a refused password change.
var adChangeCodes = map[string]struct {
	kind   error
	reason string
}{
	"0000052D": {ErrPasswordPolicy, "the new password does not meet the password policy (complexity, length, history or minimum age)"},
	"00000056": {ErrWrongPassword, "the old password is wrong"},
	"00002098": {ErrNotPermitted, "insufficient access rights (the Reset Password right is missing)"},
	"00000005": {ErrNotPermitted, "access denied"},
	"0000001F": {nil, "the directory refused the change (it needs an encrypted connection and a well-formed unicodePwd value)"},
}

// redact removes every non-empty secret from s and shortens it: a server's
// diagnostic text is untrusted and must not carry a password into a log.
func redact(s string, secrets ...string) string {
	for _, p := range secrets {
		if p != "" {
			s = strings.ReplaceAll(s, p, "[REDACTED]")
		}
	}
	s = strings.TrimSpace(strings.TrimRight(s, "\x00"))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// refusal turns an LDAP error with a server result code into a Refusal for
// op. It returns nil when err carries no server result (a client-side or
// network failure: code 200 and above in go-ldap).
func refusal(err error, op, account, endpoint string, secrets ...string) *Refusal {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode >= 200 || le.ResultCode == 0 {
		return nil
	}
	diag := ""
	if le.Err != nil {
		diag = redact(le.Err.Error(), secrets...)
	}
	r := &Refusal{Op: op, Account: account, Endpoint: endpoint, Code: int(le.ResultCode), Diagnostic: diag}
	if op == opBind || op == opRead {
		classifyBind(r)
	} else {
		classifyChange(r)
	}
	return r
}

func classifyBind(r *Refusal) {
	switch r.Code {
	case ldap.LDAPResultInvalidCredentials:
		if m := adDataRE.FindStringSubmatch(r.Diagnostic); m != nil {
			r.ADCode = strings.ToLower(m[1])
			if c, ok := adBindCodes[r.ADCode]; ok {
				r.kind, r.Reason = c.kind, c.reason
				return
			}
		}
		// RFC 4511 directories do not say whether the account exists.
		r.kind, r.Reason = ErrWrongPassword, "invalid credentials (wrong password or no such account)"
	case ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired:
		r.Reason = "the directory requires an encrypted connection for this bind"
	case ldap.LDAPResultNoSuchObject:
		r.kind, r.Reason = ErrNoSuchAccount, "no such account"
	case ldap.LDAPResultInsufficientAccessRights:
		r.kind, r.Reason = ErrNotPermitted, "insufficient access rights"
	default:
		r.Reason = "the directory refused the bind"
	}
}

func classifyChange(r *Refusal) {
	if m := adWin32RE.FindStringSubmatch(r.Diagnostic); m != nil {
		r.ADCode = strings.ToUpper(m[1])
		if c, ok := adChangeCodes[r.ADCode]; ok {
			r.kind, r.Reason = c.kind, c.reason
			return
		}
	}
	switch r.Code {
	case ldap.LDAPResultConstraintViolation:
		// OpenLDAP's ppolicy: "Password fails quality checking policy",
		// "Password is in history of old passwords", "Password is too
		// young to change" ...
		r.kind, r.Reason = ErrPasswordPolicy, "the new password does not meet the password policy"
	case ldap.LDAPResultUnwillingToPerform:
		if strings.Contains(strings.ToLower(r.Diagnostic), "old password") {
			// OpenLDAP: "unwilling to verify old password".
			r.kind, r.Reason = ErrWrongPassword, "the old password is wrong"
			return
		}
		r.Reason = "the directory is unwilling to change this password"
	case ldap.LDAPResultInsufficientAccessRights:
		r.kind, r.Reason = ErrNotPermitted, "insufficient access rights"
	case ldap.LDAPResultNoSuchObject:
		r.kind, r.Reason = ErrNoSuchAccount, "no such account"
	case ldap.LDAPResultInvalidCredentials:
		r.kind, r.Reason = ErrWrongPassword, "invalid credentials"
	case ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultStrongAuthRequired:
		r.Reason = "the directory requires an encrypted connection to change a password"
	default:
		r.Reason = "the directory refused the change"
	}
}
