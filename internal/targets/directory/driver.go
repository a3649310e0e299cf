package directory

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
)

// New returns the rotation target of the directory function: the account
// strategy layer over the directory that cfg names.
func New(cfg Config, sm account.SecretsAPI) *account.Target {
	return account.New(cfg.Config, NewDriver(cfg), sm)
}

// Driver is the directory's account.Driver: the secret format, the place
// of every connection (always the configured directory), binding, and the
// password operations of Conn. It decides nothing the layer decides.
type Driver struct {
	cfg Config
}

var _ account.Driver = (*Driver)(nil)

// NewDriver returns the Driver of the directory that cfg names.
func NewDriver(cfg Config) *Driver { return &Driver{cfg: cfg} }

// version is a parsed secret with the protection it asks for.
type version struct {
	s   *secret
	sec Security
}

// Name implements account.Driver.
func (d *Driver) Name() string {
	if d.cfg.Kind == ActiveDirectory {
		return "Active Directory"
	}
	return "LDAP directory"
}

// Capabilities implements account.Driver: an account can change its own
// password (proving the old one), and holds one password at a time.
func (d *Driver) Capabilities() account.Capabilities {
	return account.Capabilities{OwnPassword: true}
}

// Parse implements account.Driver. The secret may repeat the configured
// host and port but never name others; its account must lie below one of
// the allowed base DNs (a master secret's account need not); it may ask for
// plaintext only where the configuration allows it. Every version, master
// secrets included, names the configured directory as its Server, so
// master credentials can go nowhere else.
func (d *Driver) Parse(req account.ParseRequest) (account.Account, error) {
	s, err := parseSecret(req.Value)
	if err != nil {
		return account.Account{}, err
	}
	if s.Host != "" && !strings.EqualFold(s.Host, d.cfg.Host) {
		return account.Account{}, fmt.Errorf(`secret field "host" names %q, but this function rotates accounts of %s only (DIRECTORY_URL): refusing to use the secret`, s.Host, d.cfg.URL())
	}
	if s.Port != 0 && s.Port != d.cfg.Port {
		return account.Account{}, fmt.Errorf(`secret field "port" names %d, but this function rotates accounts of %s only (DIRECTORY_URL): refusing to use the secret`, s.Port, d.cfg.URL())
	}
	sec, err := d.cfg.security(s.Security)
	if err != nil {
		return account.Account{}, err
	}
	dn, err := ldap.ParseDN(s.Username)
	if err != nil || len(dn.RDNs) == 0 {
		return account.Account{}, errors.New(`secret field "username" is not a distinguished name: give the account's DN, e.g. CN=svc-app,OU=ServiceAccounts,DC=example,DC=com`)
	}
	a := account.Account{
		Username: s.Username, Password: s.Password,
		Strategy: account.SingleUser,
		Server:   string(sec) + " " + net.JoinHostPort(strings.ToLower(d.cfg.Host), strconv.Itoa(d.cfg.Port)),
		Value:    &version{s: s, sec: sec},
	}
	if req.Master {
		// A master secret's own masterarn and strategy mean nothing.
		return a, nil
	}
	if !d.cfg.allowed(dn) {
		return account.Account{}, fmt.Errorf(`secret field "username": %s is not below DIRECTORY_ALLOWED_BASE_DNS (%s): this function rotates no account outside them`,
			s.Username, strings.Join(d.cfg.BaseDNs, "; "))
	}
	a.MasterARN = s.MasterARN
	switch {
	case s.Strategy == strategyAlternating, s.Strategy == "" && s.MasterARN != "":
		a.Strategy = account.AlternatingUsers
	case s.Strategy == strategySingle && s.MasterARN != "":
		// The master resets the account's own password, after the
		// secret proved that it controls the account: for accounts that
		// may not change their own (a minimum password age, "user cannot
		// change password").
		a.Strategy = account.SingleUser
	}
	return a, nil
}

// security resolves the protection a secret asks for ("security"): the
// configured one when it asks for none; plaintext only where
// DIRECTORY_ALLOW_PLAINTEXT allows it.
func (c Config) security(requested string) (Security, error) {
	switch Security(requested) {
	case "":
		return c.Security, nil
	case LDAPS, StartTLS:
		if Security(requested) != c.Security {
			return "", fmt.Errorf(`secret field "security" asks for %s, but the directory is reached over %s (DIRECTORY_URL %s): leave the field out`, requested, c.Security, c.URL())
		}
		return c.Security, nil
	case Plaintext:
		if _, err := ParseSecurity(requested, c.AllowPlaintext); err != nil {
			return "", fmt.Errorf(`secret field "security": %w (DIRECTORY_ALLOW_PLAINTEXT)`, err)
		}
		return Plaintext, nil
	}
	return "", fmt.Errorf(`secret field "security" is %q: want %s, %s or %s`, requested, LDAPS, StartTLS, Plaintext)
}

// Twins implements account.Driver: the account and the account whose
// first RDN value carries the clone suffix, in the same container
// ("CN=svc-app,OU=..." and "CN=svc-app_clone,OU=..."). Both must exist:
// the function never creates a directory account.
func (d *Driver) Twins(req account.TwinsRequest) (account.Twins, error) {
	dn := req.Username
	end := firstRDNEnd(dn)
	first, rest := dn[:end], dn[end:]
	eq := strings.IndexByte(first, '=')
	if eq < 0 || firstRDNEnd(first) != len(first) || hasUnescaped(first, '+') {
		return account.Twins{}, fmt.Errorf(`user %q (field "username"): its first RDN must be a single attribute=value to name the alternating account after it`, dn)
	}
	if strings.HasSuffix(first, " ") || strings.HasSuffix(first, `\`) {
		return account.Twins{}, fmt.Errorf(`user %q (field "username"): its first RDN ends in a space or an escape; write the DN without it`, dn)
	}
	suffix := d.cfg.CloneSuffix
	base := first
	if strings.HasSuffix(first, suffix) && len(first)-len(suffix) > eq+1 {
		base = first[:len(first)-len(suffix)]
	}
	tw := account.Twins{Base: base + rest, Clone: base + suffix + rest}
	if d.cfg.Kind == ActiveDirectory {
		cdn, err := ldap.ParseDN(tw.Clone)
		if err != nil || len(cdn.RDNs) == 0 {
			return account.Twins{}, fmt.Errorf(`user %q (field "username"): the alternating account's DN %q does not parse`, dn, tw.Clone)
		}
		if n := utf8.RuneCountInString(cdn.RDNs[0].Attributes[0].Value); n > maxADCNLength {
			return account.Twins{}, fmt.Errorf(`user %q (field "username"): the alternating account's RDN value would be %d characters, Active Directory allows %d: shorten the account's name`, dn, n, maxADCNLength)
		}
	}
	return tw, nil
}

// firstRDNEnd is the index of the first unescaped "," or ";" of dn, or
// len(dn).
func firstRDNEnd(dn string) int {
	escaped := false
	for i := 0; i < len(dn); i++ {
		switch {
		case escaped:
			escaped = false
		case dn[i] == '\\':
			escaped = true
		case dn[i] == ',' || dn[i] == ';':
			return i
		}
	}
	return len(dn)
}

// hasUnescaped reports whether s holds c outside a backslash escape.
func hasUnescaped(s string, c byte) bool {
	escaped := false
	for i := 0; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == c:
			return true
		}
	}
	return false
}

// Locate implements account.Driver: every account of every secret binds at
// the configured directory, over the protection its secret resolved to.
func (d *Driver) Locate(_ context.Context, req account.LocateRequest) (account.Location, error) {
	v, ok := req.Account.Value.(*version)
	if !ok {
		return account.Location{}, errors.New("directory: an account the directory driver did not parse")
	}
	return account.Location{Host: d.cfg.Host, Port: d.cfg.Port, Plaintext: v.sec == Plaintext, Detail: v.sec}, nil
}

// Connect implements account.Driver: a bind over exactly req.TLS. On
// Active Directory a rotated account's login also obtains a Kerberos
// ticket-granting ticket with the password: the DC keeps accepting an
// account's previous password in simple binds for its "old password
// allowed period" (an hour by default), while the KDC refuses it at once,
// so only the KDC tells which password is the account's now. A master
// user's login is a bind alone.
func (d *Driver) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	sec, _ := req.Location.Detail.(Security)
	ep := d.cfg.endpoint(sec, req.TLS)
	ep.Host, ep.Port, ep.Timeout = req.Location.Host, req.Location.Port, req.Timeout
	c, err := Connect(ctx, ep, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	if ep.Kind == ActiveDirectory && !req.Master {
		if err := c.Probe(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return session{c}, nil
}

// NewValue implements account.Driver.
func (d *Driver) NewValue(req account.NewValueRequest) (string, error) {
	v, ok := req.Account.Value.(*version)
	if !ok {
		return "", errors.New("directory: an account the directory driver did not parse")
	}
	return v.s.with(req.Username, req.Password)
}

// session adapts a Conn to account.Session.
type session struct{ c *Conn }

func (s session) Probe(ctx context.Context) error { return s.c.Probe(ctx) }
func (s session) Close() error                    { return s.c.Close() }

func (s session) SetOwnPassword(ctx context.Context, req account.SetOwnPasswordRequest) error {
	return s.c.SetOwnPassword(ctx, req.Username, req.Password)
}

func (s session) SetPassword(ctx context.Context, req account.SetPasswordRequest) error {
	return s.c.SetPassword(ctx, req.Username, req.Password)
}

func (s session) EnsureClone(ctx context.Context, req account.EnsureCloneRequest) error {
	return s.c.EnsureClone(ctx, req.Original, req.Clone, req.Password)
}

// AddPassword: a directory account holds one password.
func (session) AddPassword(context.Context, account.AddPasswordRequest) error {
	return errors.ErrUnsupported
}

// RemovePasswords: a directory account holds one password.
func (session) RemovePasswords(context.Context, account.RemovePasswordsRequest) error {
	return errors.ErrUnsupported
}
