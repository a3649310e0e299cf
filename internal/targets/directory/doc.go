// Package directory is the directory function's target: the account
// strategy layer (internal/account) over a driver for Active Directory and
// RFC 4511 directories such as OpenLDAP. See docs/directory.md.
//
// The driver (Driver, New) parses the directory secret format, places every
// connection at the directory the function's configuration names (Config,
// ConfigFromEnv: the directory's URL, kind, Kerberos realm and the
// subtrees whose accounts may be rotated), and refuses a secret that names
// another server or an account outside those subtrees before any
// connection. The layer does the strategies, the crash fallback and the
// trust rules.
//
// Beneath it, Connect binds to a directory with verified TLS (or, only with
// the configuration's consent, in plaintext), telling a refused bind apart
// from an unreachable server, and returns a Conn that changes and resets
// passwords (RFC 3062 Password Modify for RFC 4511 directories; unicodePwd
// over LDAPS for Active Directory) and tests them by reading the account's
// own entry and, for Active Directory, by obtaining a Kerberos
// ticket-granting ticket (KerberosLogin).
//
// Connection errors are *account.ConnError classified as
// account.ErrCannotLogIn (the directory or KDC judged the credentials) or
// account.ErrCannotReach (anything before that: no route, TLS that does not
// verify, timeout). A directory's refusal of a password change is a
// *Refusal naming the account and the reason, matching ErrPasswordPolicy,
// ErrWrongPassword, ErrNotPermitted or ErrNoSuchAccount with errors.Is.
// No error or message carries a password, hash or ticket: the server's own
// diagnostic text is included only with the passwords of the call removed.
package directory
