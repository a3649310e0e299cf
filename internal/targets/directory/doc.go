// Package directory holds the directory-server pieces of the directory
// rotation target: binding to an LDAP directory or Active Directory with
// verified TLS, classifying a refused bind apart from an unreachable server,
// changing and resetting passwords (RFC 3062 Password Modify for RFC 4511
// directories such as OpenLDAP; unicodePwd over LDAPS for Active Directory),
// testing a password by binding and, for Active Directory, by obtaining a
// Kerberos ticket-granting ticket with it.
//
// It is a driver, shaped like internal/dbtarget's Driver and Conn: Connect
// logs in as one account and returns a Conn whose Probe, SetOwnPassword,
// SetPassword and EnsureClone are what the account strategy layer (single
// account, alternating accounts with a master secret, crash fallback) calls.
// It has no strategy of its own and reads no secret: every endpoint setting
// comes from the caller, which builds it from the function's configuration.
//
// Connection errors are *dbsecret.ConnError classified as
// dbsecret.ErrCannotLogIn (the directory or KDC judged the credentials) or
// dbsecret.ErrCannotReach (anything before that: no route, TLS that does not
// verify, timeout). A directory's refusal of a password change is a
// *Refusal naming the account and the reason, matching ErrPasswordPolicy,
// ErrWrongPassword, ErrNotPermitted or ErrNoSuchAccount with errors.Is.
// No error or message carries a password, hash or ticket: the server's own
// diagnostic text is included only with the passwords of the call removed.
package directory
