package directory

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/password"
)

// DefaultExcludeCharacters are left out of generated passwords unless
// EXCLUDE_CHARACTERS says otherwise: quotes, the backslash and the
// backquote need quoting in the configuration files and shells where
// service-account passwords end up (ldap.conf, sssd.conf, JNDI properties).
// The space is out unless INCLUDE_SPACE.
const DefaultExcludeCharacters = "\"'\\`"

// DefaultCloneSuffix names the second account of an alternating pair:
// the first RDN value of the account plus the suffix, as the database
// functions name their clones.
const DefaultCloneSuffix = "_clone"

// maxADPasswordLength is the longest password Active Directory sets through
// unicodePwd.
const maxADPasswordLength = 256

// maxADCNLength is the longest cn Active Directory stores (its schema's
// rangeUpper): a clone name longer than this is refused, never truncated.
const maxADCNLength = 64

// Config is the configuration of the directory function. Everything in it
// comes from the function's environment, which the function trusts; a
// secret decides none of it. The directory's place, its kind, its Kerberos
// realm and the subtrees whose accounts may be rotated are here, so that a
// secret can name neither another server nor an account outside them.
type Config struct {
	// Config holds the settings every account target shares: the password
	// policy, DIRECTORY_CA_BUNDLE, DIRECTORY_TIMEOUT, MASTER_ALLOWED_USERS.
	account.Config

	// Kind is the password protocol (DIRECTORY_KIND).
	Kind Kind
	// Host, Port and Security are where the directory is and how the
	// connection is protected (DIRECTORY_URL: ldaps://host[:port] or
	// ldap://host[:port], the latter with StartTLS).
	Host     string
	Port     int
	Security Security
	// AllowPlaintext lets a secret that asks for it ("security":
	// "plaintext") bind its own account without TLS
	// (DIRECTORY_ALLOW_PLAINTEXT; RFC 4511 directories and an ldap:// URL
	// only). Master credentials never travel in plaintext.
	AllowPlaintext bool
	// BaseDNs are the subtrees whose accounts the function rotates
	// (DIRECTORY_ALLOWED_BASE_DNS): a secret naming an account anywhere
	// else is refused before any connection.
	BaseDNs []string
	// Kerberos is the realm and KDCs of Active Directory
	// (DIRECTORY_KERBEROS_REALM, DIRECTORY_KERBEROS_KDCS).
	Kerberos Kerberos
	// CloneSuffix names the second account of an alternating pair
	// (DIRECTORY_CLONE_SUFFIX).
	CloneSuffix string

	baseDNs []*ldap.DN
}

// envNames are the directory function's names for the account layer's
// settings.
var envNames = account.EnvNames{
	CABundle:          "DIRECTORY_CA_BUNDLE",
	ConnectTimeout:    "DIRECTORY_TIMEOUT",
	ExcludeCharacters: DefaultExcludeCharacters,
}

var suffixRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,20}$`)

// ConfigFromEnv reads and validates the configuration through getenv. Its
// errors name the variable.
//
//	DIRECTORY_KIND              activedirectory or ldap (required)
//	DIRECTORY_URL               ldaps://host[:port] (default port 636) or
//	                            ldap://host[:port] (StartTLS, default 389) (required)
//	DIRECTORY_ALLOWED_BASE_DNS  ";"-separated DNs: only accounts below them are
//	                            rotated (required)
//	DIRECTORY_KERBEROS_REALM    Active Directory: the realm, e.g. EXAMPLE.COM (required)
//	DIRECTORY_KERBEROS_KDCS     Active Directory: ","-separated host[:port]
//	                            (default: the directory's host, port 88)
//	DIRECTORY_ALLOW_PLAINTEXT   true lets a secret ask for a plaintext bind of its
//	                            own account (ldap kind, ldap:// URL only); default false
//	DIRECTORY_CLONE_SUFFIX      alternating accounts: default _clone
//	DIRECTORY_CA_BUNDLE         PEM file trusted besides the system roots
//	DIRECTORY_TIMEOUT           one login, default 5s, never past the step's deadline
//	MASTER_ALLOWED_USERS        optional DNs or DN prefixes ending in "*"
//	PASSWORD_LENGTH, EXCLUDE_*, INCLUDE_SPACE, REQUIRE_EACH_INCLUDED_TYPE
//
// For Active Directory the password policy must produce passwords that
// meet AD's complexity rule (three of upper case, lower case, digits and
// punctuation, each guaranteed), at most 256 characters.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	ac, err := account.ConfigFromEnv(getenv, envNames)
	if err != nil {
		return Config{}, err
	}
	if len(ac.MasterAllowedServers) > 0 {
		return Config{}, errors.New("MASTER_ALLOWED_SERVERS is not used by the directory function: master credentials go only to DIRECTORY_URL; unset it")
	}
	c := Config{Config: ac}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }

	switch k := Kind(strings.ToLower(get("DIRECTORY_KIND"))); k {
	case LDAP, ActiveDirectory:
		c.Kind = k
	case "":
		return Config{}, fmt.Errorf("DIRECTORY_KIND is not set: want %s or %s", ActiveDirectory, LDAP)
	default:
		return Config{}, fmt.Errorf("DIRECTORY_KIND=%q: want %s or %s", get("DIRECTORY_KIND"), ActiveDirectory, LDAP)
	}
	if err := c.parseURL(get("DIRECTORY_URL")); err != nil {
		return Config{}, err
	}
	if err := c.parseBaseDNs(get("DIRECTORY_ALLOWED_BASE_DNS")); err != nil {
		return Config{}, err
	}
	if s := get("DIRECTORY_ALLOW_PLAINTEXT"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Config{}, fmt.Errorf("DIRECTORY_ALLOW_PLAINTEXT=%q is not true or false", s)
		}
		c.AllowPlaintext = b
	}
	if c.AllowPlaintext && (c.Kind != LDAP || c.Security != StartTLS) {
		return Config{}, errors.New("DIRECTORY_ALLOW_PLAINTEXT=true needs DIRECTORY_KIND=ldap and an ldap:// DIRECTORY_URL (Active Directory changes passwords over LDAPS only)")
	}
	c.CloneSuffix = DefaultCloneSuffix
	if s := get("DIRECTORY_CLONE_SUFFIX"); s != "" {
		if !suffixRE.MatchString(s) {
			return Config{}, fmt.Errorf("DIRECTORY_CLONE_SUFFIX=%q: want 1 to 20 letters, digits, '.', '_' or '-'", s)
		}
		c.CloneSuffix = s
	}
	if c.Kind == ActiveDirectory {
		if err := c.parseKerberos(get("DIRECTORY_KERBEROS_REALM"), get("DIRECTORY_KERBEROS_KDCS")); err != nil {
			return Config{}, err
		}
		if err := adComplexity(c.Password); err != nil {
			return Config{}, err
		}
	} else if get("DIRECTORY_KERBEROS_REALM") != "" || get("DIRECTORY_KERBEROS_KDCS") != "" {
		return Config{}, errors.New("DIRECTORY_KERBEROS_REALM and DIRECTORY_KERBEROS_KDCS are for DIRECTORY_KIND=activedirectory only")
	}
	// The endpoint must be one that Connect accepts; the TLS configuration
	// here only stands in for the one each login builds.
	if err := c.endpoint(c.Security, &tls.Config{ServerName: c.Host}).Validate(); err != nil {
		return Config{}, fmt.Errorf("DIRECTORY_URL: %w", err)
	}
	return c, nil
}

// parseURL reads DIRECTORY_URL.
func (c *Config) parseURL(s string) error {
	if s == "" {
		return errors.New("DIRECTORY_URL is not set: want ldaps://host[:port] or ldap://host[:port] (StartTLS)")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("DIRECTORY_URL=%q is not ldaps://host[:port] or ldap://host[:port]", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("DIRECTORY_URL=%q: give only the scheme, host and port (no user, path or query)", s)
	}
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		c.Security, c.Port = LDAPS, 636
	case "ldap":
		c.Security, c.Port = StartTLS, 389
	default:
		return fmt.Errorf("DIRECTORY_URL=%q: the scheme must be ldaps (TLS) or ldap (StartTLS)", s)
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("DIRECTORY_URL=%q: port %q is not 1..65535", s, p)
		}
		c.Port = n
	}
	if c.Host == "" {
		return fmt.Errorf("DIRECTORY_URL=%q names no host", s)
	}
	return nil
}

// parseBaseDNs reads DIRECTORY_ALLOWED_BASE_DNS: DNs separated by ";"
// (a DN holds commas; a ";" inside a value is written "\;").
func (c *Config) parseBaseDNs(s string) error {
	if s == "" {
		return errors.New("DIRECTORY_ALLOWED_BASE_DNS is not set: name the subtrees whose accounts this function may rotate, e.g. OU=ServiceAccounts,DC=example,DC=com")
	}
	for _, item := range splitUnescaped(s, ';') {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		dn, err := ldap.ParseDN(item)
		if err != nil || len(dn.RDNs) == 0 {
			return fmt.Errorf("DIRECTORY_ALLOWED_BASE_DNS: %q is not a distinguished name", item)
		}
		c.BaseDNs = append(c.BaseDNs, item)
		c.baseDNs = append(c.baseDNs, dn)
	}
	if len(c.BaseDNs) == 0 {
		return errors.New("DIRECTORY_ALLOWED_BASE_DNS names no DN")
	}
	return nil
}

// splitUnescaped splits s at each sep not preceded by a backslash escape.
func splitUnescaped(s string, sep byte) []string {
	var out []string
	start, escaped := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseKerberos reads the realm and KDCs of Active Directory.
func (c *Config) parseKerberos(realm, kdcs string) error {
	if realm == "" {
		return errors.New("DIRECTORY_KERBEROS_REALM is not set: Active Directory passwords are tested with a Kerberos ticket (the realm is the domain's DNS name in capitals, e.g. EXAMPLE.COM)")
	}
	if !realmRE.MatchString(realm) {
		return fmt.Errorf("DIRECTORY_KERBEROS_REALM=%q is not a realm name", realm)
	}
	c.Kerberos.Realm = realm
	if kdcs == "" {
		c.Kerberos.KDCs = []string{net.JoinHostPort(c.Host, "88")}
		return nil
	}
	for _, k := range strings.Split(kdcs, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !kdcRE.MatchString(k) {
			return fmt.Errorf("DIRECTORY_KERBEROS_KDCS: %q is not host[:port]", k)
		}
		c.Kerberos.KDCs = append(c.Kerberos.KDCs, k)
	}
	if len(c.Kerberos.KDCs) == 0 {
		return errors.New("DIRECTORY_KERBEROS_KDCS names no KDC")
	}
	return nil
}

// adComplexity refuses a password policy whose passwords Active Directory
// would refuse: AD's complexity rule wants characters of three of the
// categories upper case, lower case, digit and non-alphanumeric, so the
// generator must include at least three of them and guarantee each. (AD
// also refuses a password that contains the account's sAMAccountName or a
// token of its displayName; a random password does so rarely, and the
// refusal is a clear error: see docs/directory.md.)
func adComplexity(p password.Policy) error {
	n := 0
	for _, c := range []struct {
		excluded bool
		chars    string
	}{
		{p.ExcludeLowercase, password.Lowercase},
		{p.ExcludeUppercase, password.Uppercase},
		{p.ExcludeNumbers, password.Numbers},
		{p.ExcludePunctuation, password.Punctuation},
	} {
		if !c.excluded && strings.ContainsFunc(c.chars, func(r rune) bool { return !strings.ContainsRune(p.ExcludeCharacters, r) }) {
			n++
		}
	}
	if n < 3 || !p.RequireEachIncludedType {
		return fmt.Errorf("the password policy (EXCLUDE_*, EXCLUDE_CHARACTERS, REQUIRE_EACH_INCLUDED_TYPE) does not guarantee Active Directory's complexity: keep at least three of lower case, upper case, numbers and punctuation, with REQUIRE_EACH_INCLUDED_TYPE=true (%d classes, require each %v)", n, p.RequireEachIncludedType)
	}
	if p.Length > maxADPasswordLength {
		return fmt.Errorf("PASSWORD_LENGTH=%d: Active Directory takes passwords of at most %d characters", p.Length, maxADPasswordLength)
	}
	return nil
}

// endpoint is the directory over sec, with tlsCfg.
func (c Config) endpoint(sec Security, tlsCfg *tls.Config) Endpoint {
	return Endpoint{
		Kind: c.Kind, Host: c.Host, Port: c.Port, Security: sec, TLS: tlsCfg,
		AllowPlaintext: c.AllowPlaintext, Timeout: c.ConnectTimeout, Kerberos: c.Kerberos,
	}
}

// URL is the directory as DIRECTORY_URL names it.
func (c Config) URL() string {
	scheme := "ldaps"
	if c.Security == StartTLS {
		scheme = "ldap"
	}
	return scheme + "://" + net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// allowed reports whether dn lies strictly below one of the base DNs.
func (c Config) allowed(dn *ldap.DN) bool {
	for _, b := range c.baseDNs {
		if b.AncestorOfFold(dn) {
			return true
		}
	}
	return false
}

// Describe returns the configuration as log attributes (nothing secret).
func (c Config) Describe() []slog.Attr {
	return append(c.Config.Describe(),
		slog.String("directory_kind", string(c.Kind)),
		slog.String("directory_url", c.URL()),
		slog.Any("directory_allowed_base_dns", c.BaseDNs),
		slog.String("kerberos_realm", c.Kerberos.Realm),
		slog.Any("kerberos_kdcs", c.Kerberos.KDCs),
		slog.Bool("allow_plaintext", c.AllowPlaintext),
		slog.String("clone_suffix", c.CloneSuffix),
	)
}
