package directory

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// Conn is a session bound as one account. It remembers the password it
// bound with, in memory only: Active Directory and RFC 3062 need the old
// password to change an account's own, and Probe tests it with Kerberos.
type Conn struct {
	ep       Endpoint
	l        *ldap.Conn
	account  string
	password string
	// kerberosOK: Probe obtained a ticket-granting ticket with password
	// (Active Directory); a later Probe does not ask the KDC again.
	kerberosOK bool
}

// Connect dials ep, protects the connection as ep.Security says (the
// server's certificate verified), and binds as account (a DN) with
// password. Its errors are *dbsecret.ConnError: ErrCannotLogIn when the
// directory refused the credentials (a *Refusal says why), ErrCannotReach
// for anything before that; or a plain error for an invalid endpoint.
func Connect(ctx context.Context, ep Endpoint, account, password string) (*Conn, error) {
	if err := ep.Validate(); err != nil {
		return nil, err
	}
	if account == "" || password == "" {
		// An empty password is an unauthenticated bind (RFC 4513): it
		// would "succeed" without proving anything.
		return nil, fmt.Errorf("bind at %s: account and password must not be empty", ep)
	}
	if !utf8.ValidString(password) {
		return nil, fmt.Errorf("bind as %s at %s: the password is not valid UTF-8", account, ep)
	}
	reach := func(err error) error {
		return &dbsecret.ConnError{Kind: dbsecret.ErrCannotReach, User: account, Endpoint: ep.String(), Err: err}
	}
	d := net.Dialer{Timeout: ep.timeout()}
	nc, err := d.DialContext(ctx, "tcp", ep.Addr())
	if err != nil {
		return nil, reach(err)
	}
	// The whole of Connect is bounded by ctx and by one timeout per round
	// trip; a silent server cannot hold it past either.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	conn := net.Conn(nc)
	sec := ep.security()
	if sec == LDAPS {
		tc := tls.Client(nc, ep.TLS.Clone())
		hctx, cancel := context.WithTimeout(ctx, ep.timeout())
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, reach(fmt.Errorf("TLS: %w", err))
		}
		conn = tc
	}
	l := ldap.NewConn(conn, sec == LDAPS)
	l.Start()
	l.SetTimeout(ep.timeout())
	if sec == StartTLS {
		// go-ldap's StartTLS handshake has no timeout of its own.
		nc.SetDeadline(time.Now().Add(ep.timeout()))
		err := l.StartTLS(ep.TLS.Clone())
		nc.SetDeadline(time.Time{})
		if err != nil {
			l.Close()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, reach(fmt.Errorf("StartTLS: %w", sanitize(err)))
		}
	}
	if err := l.Bind(account, password); err != nil {
		l.Close()
		if ctx.Err() != nil {
			return nil, reach(ctx.Err())
		}
		if r := refusal(err, opBind, account, ep.String(), password); r != nil {
			kind := dbsecret.ErrCannotReach
			if errors.Is(r, ErrWrongPassword) || errors.Is(r, ErrNoSuchAccount) || errors.Is(r, ErrAccountUnusable) {
				kind = dbsecret.ErrCannotLogIn
			}
			return nil, &dbsecret.ConnError{Kind: kind, User: account, Endpoint: ep.String(), Err: r}
		}
		return nil, reach(sanitize(err))
	}
	return &Conn{ep: ep, l: l, account: account, password: password}, nil
}

// sanitize keeps the message of a client-side go-ldap error, never its
// packet (a *ldap.Error may hold the request or response).
func sanitize(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) {
		msg := "ldap error"
		if le.Err != nil {
			msg = le.Err.Error()
		}
		return fmt.Errorf("%s (LDAP code %d)", redact(msg), le.ResultCode)
	}
	return err
}

// Account is the DN the session is bound as.
func (c *Conn) Account() string { return c.account }

// Endpoint is where the session is connected.
func (c *Conn) Endpoint() Endpoint { return c.ep }

// guard closes the connection when ctx ends during an operation: go-ldap's
// requests take no context.
func (c *Conn) guard(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.l.Close() })
}

// opError turns an operation's error into a *Refusal, or into an error
// naming the operation and account when the server gave no result.
func (c *Conn) opError(ctx context.Context, err error, op, account string, secrets ...string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s of %s at %s: %w", op, account, c.ep, ctx.Err())
	}
	if r := refusal(err, op, account, c.ep.String(), secrets...); r != nil {
		return r
	}
	return fmt.Errorf("%s of %s at %s: %w", op, account, c.ep, sanitize(err))
}

// Probe proves the session works with the least privilege: it reads the
// account's own entry. For Active Directory it also obtains a Kerberos
// ticket-granting ticket for the account (its sAMAccountName) with the
// session's password, since services authenticate with Kerberos; a refused
// login is a *dbsecret.ConnError of kind ErrCannotLogIn. Once the KDC
// accepted the session's password, a later Probe only reads the entry.
func (c *Conn) Probe(ctx context.Context) error {
	attrs := []string{"1.1"}
	if c.ep.Kind == ActiveDirectory {
		attrs = []string{"sAMAccountName"}
	}
	e, err := c.readEntry(ctx, c.account, attrs)
	if err != nil {
		return err
	}
	if c.ep.Kind != ActiveDirectory || c.kerberosOK {
		return nil
	}
	sam := e.GetAttributeValue("sAMAccountName")
	if sam == "" {
		return fmt.Errorf("read of %s at %s: the entry has no sAMAccountName to log in to Kerberos with", c.account, c.ep)
	}
	if err := KerberosLogin(ctx, c.ep.Kerberos, c.ep.timeout(), sam, c.password); err != nil {
		return err
	}
	c.kerberosOK = true
	return nil
}

// readEntry reads one entry by DN; a missing entry is a *Refusal matching
// ErrNoSuchAccount.
func (c *Conn) readEntry(ctx context.Context, dn string, attrs []string) (*ldap.Entry, error) {
	defer c.guard(ctx)()
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(c.ep.timeout()/time.Second), false,
		"(objectClass=*)", attrs, nil)
	res, err := c.l.Search(req)
	if err != nil {
		return nil, c.opError(ctx, err, opRead, dn, c.password)
	}
	if len(res.Entries) != 1 {
		return nil, &Refusal{Op: opRead, Account: dn, Endpoint: c.ep.String(), Reason: "no such account", kind: ErrNoSuchAccount}
	}
	return res.Entries[0], nil
}

// SetOwnPassword changes the password of the bound account, proving the
// old one (the password the session bound with): for Active Directory one
// modify deleting the old unicodePwd value and adding the new one, which
// the password policy (history, minimum age) applies to; for an RFC 4511
// directory the Password Modify extended operation with the old password.
// Afterwards the session's password is the new one; asking for the
// password the session bound with does nothing.
func (c *Conn) SetOwnPassword(ctx context.Context, account, password string) error {
	if !sameDN(account, c.account) {
		return fmt.Errorf("password change of %s at %s: the session is bound as %s: refusing to change another account's password as its own", account, c.ep, c.account)
	}
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("password change of %s at %s: %w", account, c.ep, err)
	}
	if password == c.password {
		// The session bound with it: it is set already (a step run again).
		return nil
	}
	defer c.guard(ctx)()
	var err error
	switch c.ep.Kind {
	case ActiveDirectory:
		req := ldap.NewModifyRequest(c.account, nil)
		req.Delete("unicodePwd", []string{unicodePwd(c.password)})
		req.Add("unicodePwd", []string{unicodePwd(password)})
		err = c.l.Modify(req)
	default:
		_, err = c.l.PasswordModify(ldap.NewPasswordModifyRequest("", c.password, password))
	}
	if err != nil {
		return c.opError(ctx, err, opChange, account, c.password, password)
	}
	c.password, c.kerberosOK = password, false
	return nil
}

// SetPassword resets another account's password with the session's
// privilege (a password administrator's): for Active Directory a replace
// of unicodePwd (the Reset Password right), for an RFC 4511 directory the
// Password Modify extended operation naming the account. The account must
// exist. Setting the password the account has already succeeds, also
// where a password history would refuse it: running it twice is harmless.
func (c *Conn) SetPassword(ctx context.Context, account, password string) error {
	if account == "" {
		return fmt.Errorf("password reset at %s: no account named", c.ep)
	}
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("password reset of %s at %s: %w", account, c.ep, err)
	}
	defer c.guard(ctx)()
	var err error
	switch c.ep.Kind {
	case ActiveDirectory:
		req := ldap.NewModifyRequest(account, nil)
		req.Replace("unicodePwd", []string{unicodePwd(password)})
		err = c.l.Modify(req)
	default:
		_, err = c.l.PasswordModify(ldap.NewPasswordModifyRequest(account, "", password))
	}
	if err != nil {
		err = c.opError(ctx, err, opReset, account, c.password, password)
		// A directory with a password history refuses the value the
		// account has already: a step run again after the reset. Only
		// then, a bind with it tells (a refused one shows in the server's
		// log, on a path that fails anyway).
		if errors.Is(err, ErrPasswordPolicy) && c.alreadySet(ctx, account, password) {
			return nil
		}
		return err
	}
	if sameDN(account, c.account) {
		c.password, c.kerberosOK = password, false
	}
	return nil
}

// alreadySet reports whether account binds with password.
func (c *Conn) alreadySet(ctx context.Context, account, password string) bool {
	other, err := Connect(ctx, c.ep, account, password)
	if err != nil {
		return false
	}
	other.Close()
	return true
}

// ErrNoClone is wrapped by EnsureClone's error when the second account of
// an alternating pair does not exist.
var ErrNoClone = errors.New("the alternating account does not exist: directory accounts are not created by the rotation function; create both accounts, with the same group memberships")

// EnsureClone sets the password of clone, the second account of an
// alternating pair, with the session's privilege. Directory accounts carry
// group memberships, policies and attributes that a copy would get wrong,
// so it never creates one: a missing clone is an error wrapping ErrNoClone
// (and ErrNoSuchAccount). Running it twice is harmless.
func (c *Conn) EnsureClone(ctx context.Context, original, clone, password string) error {
	if sameDN(original, clone) {
		return fmt.Errorf("alternating accounts at %s: the clone %s is the original account", c.ep, clone)
	}
	if _, err := c.readEntry(ctx, clone, []string{"1.1"}); err != nil {
		if errors.Is(err, ErrNoSuchAccount) {
			return fmt.Errorf("alternating accounts at %s: %s: %w: %w", c.ep, clone, ErrNoClone, err)
		}
		return err
	}
	return c.SetPassword(ctx, clone, password)
}

// Close ends the session.
func (c *Conn) Close() error {
	c.password = ""
	return c.l.Close()
}

// sameDN compares two DNs as LDAP does (attribute types and values
// case-insensitively); two strings that do not parse compare as text.
func sameDN(a, b string) bool {
	da, errA := ldap.ParseDN(a)
	db, errB := ldap.ParseDN(b)
	if errA != nil || errB != nil {
		return strings.EqualFold(a, b)
	}
	return da.EqualFold(db)
}

func checkPassword(p string) error {
	if p == "" {
		return errors.New("the new password is empty")
	}
	if !utf8.ValidString(p) {
		return errors.New("the new password is not valid UTF-8")
	}
	return nil
}

// unicodePwd encodes a password as Active Directory's unicodePwd wants
// it: the password in double quotes, in UTF-16LE.
func unicodePwd(p string) string {
	u := utf16.Encode([]rune(`"` + p + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return string(b)
}
