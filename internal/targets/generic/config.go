// Package generic is the rotation target for secrets that no other system has
// to accept: random passwords, API keys and signing keys. Create draws a new
// value, Set has nothing to do, and Test optionally calls an HTTPS endpoint
// with the pending value to prove that whoever consumes it already accepts it.
//
// It is configured from the environment of the Lambda function:
//
//	Variable                    Kinds       Default     Meaning
//	SECRET_KIND                 all         password    password, apikey or signingkey
//	PASSWORD_LENGTH             password    32          8..4096 characters
//	EXCLUDE_CHARACTERS          password    (none)      characters never used
//	EXCLUDE_NUMBERS             password    false       no digits 0-9
//	EXCLUDE_PUNCTUATION         password    false       no !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~
//	EXCLUDE_UPPERCASE           password    false       no A-Z
//	EXCLUDE_LOWERCASE           password    false       no a-z
//	INCLUDE_SPACE               password    false       allow the space character
//	REQUIRE_EACH_INCLUDED_TYPE  password    true        at least one of each included class
//	KEY_BYTES                   apikey      32          random bytes, 16..1024
//	                            signingkey  64          random bytes, 32..1024
//	KEY_ENCODING                apikey      base64url   hex, base64 (padded) or base64url (unpadded)
//	                            signingkey  base64
//	KEY_PREFIX                  apikey      (none)      text put before the encoded key, e.g. sk_live_;
//	                                                    printable ASCII, no spaces, at most 64 characters
//	SECRET_FIELD                all         (none)      rotate only this field of a JSON object secret
//	VERIFY_URL                  all         (none)      https URL that must accept the pending value
//	VERIFY_METHOD               all         GET         GET, POST or HEAD
//	VERIFY_HEADER               all         (none)      header that carries the raw value; when unset,
//	                                                    the value goes in "Authorization: Bearer <value>"
//	VERIFY_TIMEOUT              all         5s          Go duration for the whole verification request
//	VERIFY_CA_FILE              all         (none)      PEM bundle trusted in addition to the system roots
//
// Booleans take the forms of strconv.ParseBool. Variables of a kind other
// than the configured one are ignored, except that KEY_PREFIX is refused for
// a signing key, whose every byte must be random.
//
// Without SECRET_FIELD the whole SecretString is replaced, and a secret whose
// current value is a JSON object is refused rather than overwritten. With
// SECRET_FIELD the current value must be a JSON object; the field, if
// present, must be a string and is replaced in place, and every other byte of
// the object (other fields, their order and formatting) stays as it was. A
// missing field is added at the end of the object, so the first rotation can
// introduce it.
//
// Without VERIFY_URL, testSecret succeeds without any call: the value was
// generated and checked by this function before createSecret stored it, and
// no other system has to accept it. With VERIFY_URL, testSecret sends one
// request carrying the pending value and requires a 2xx answer; TLS is always
// verified (TLS 1.2 at least) and redirects are not followed, so that the
// value is never sent anywhere but the configured host.
package generic

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
	"github.com/secrets-rotation/secrets-rotation/internal/password"
)

// Kind is the kind of secret to generate.
type Kind string

// The kinds of secret.
const (
	KindPassword   Kind = "password"
	KindAPIKey     Kind = "apikey"
	KindSigningKey Kind = "signingkey"
)

// Limits of the key kinds.
const (
	minAPIKeyBytes     = 16
	minSigningKeyBytes = 32
	maxKeyBytes        = 1024
	maxPrefixLen       = 64
)

// Default verification timeout: long enough for a slow endpoint, short
// enough to leave room in the Lambda timeout for the error to be reported.
const defaultVerifyTimeout = 5 * time.Second

// Config is the configuration of a Target. Build it with ConfigFromEnv,
// which validates it and loads VERIFY_CA_FILE once at start-up.
type Config struct {
	Kind Kind
	// Password is the policy of KindPassword.
	Password password.Policy
	// KeyBytes, KeyEncoding and KeyPrefix shape KindAPIKey and
	// KindSigningKey values: KeyPrefix + encode(KeyBytes random bytes).
	KeyBytes    int
	KeyEncoding string
	KeyPrefix   string
	// Field, when not empty, is the field of a JSON object secret to rotate.
	Field string

	// VerifyURL, when not nil, is the https endpoint that Test calls.
	VerifyURL     *url.URL
	VerifyMethod  string
	VerifyHeader  string
	VerifyTimeout time.Duration
	VerifyCAFile  string

	// roots is VERIFY_CA_FILE added to the system roots, loaded by
	// ConfigFromEnv; nil means the system roots alone.
	roots *x509.CertPool
}

// ConfigFromEnv reads and validates the configuration through getenv
// (os.Getenv in production). The variables are described in the package
// documentation.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	var c Config
	kind := strings.TrimSpace(getenv("SECRET_KIND"))
	switch Kind(kind) {
	case "", KindPassword:
		c.Kind = KindPassword
		p, err := password.PolicyFromEnv(getenv)
		if err != nil {
			return Config{}, err
		}
		c.Password = p
	case KindAPIKey:
		c.Kind = KindAPIKey
		if err := c.keyFromEnv(getenv, 32, minAPIKeyBytes, password.EncodingBase64URL); err != nil {
			return Config{}, err
		}
	case KindSigningKey:
		c.Kind = KindSigningKey
		if err := c.keyFromEnv(getenv, 64, minSigningKeyBytes, password.EncodingBase64); err != nil {
			return Config{}, err
		}
	default:
		return Config{}, fmt.Errorf("SECRET_KIND=%q is not one of %s, %s, %s", kind, KindPassword, KindAPIKey, KindSigningKey)
	}
	c.Field = getenv("SECRET_FIELD")
	if err := c.verifyFromEnv(getenv); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) keyFromEnv(getenv func(string) string, defBytes, minBytes int, defEncoding string) error {
	c.KeyBytes = defBytes
	if s := getenv("KEY_BYTES"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("KEY_BYTES=%q is not an integer", s)
		}
		c.KeyBytes = n
	}
	if c.KeyBytes < minBytes || c.KeyBytes > maxKeyBytes {
		return fmt.Errorf("KEY_BYTES must be between %d and %d for SECRET_KIND=%s, got %d", minBytes, maxKeyBytes, c.Kind, c.KeyBytes)
	}
	c.KeyEncoding = defEncoding
	if s := strings.TrimSpace(getenv("KEY_ENCODING")); s != "" {
		c.KeyEncoding = s
	}
	// EncodeKey is the one list of encodings; ask it rather than repeat it.
	if _, err := password.EncodeKey(nil, c.KeyEncoding); err != nil {
		return fmt.Errorf("KEY_ENCODING: %w", err)
	}
	c.KeyPrefix = getenv("KEY_PREFIX")
	if c.KeyPrefix == "" {
		return nil
	}
	if c.Kind == KindSigningKey {
		return errors.New("KEY_PREFIX is set, but a signingkey must be random bytes only: unset it or use SECRET_KIND=apikey")
	}
	if len(c.KeyPrefix) > maxPrefixLen {
		return fmt.Errorf("KEY_PREFIX is %d characters long, at most %d are allowed", len(c.KeyPrefix), maxPrefixLen)
	}
	for i := 0; i < len(c.KeyPrefix); i++ {
		// Printable ASCII without space: the key travels in headers and
		// URLs, where anything else would need quoting.
		if b := c.KeyPrefix[i]; b <= ' ' || b > '~' {
			return fmt.Errorf("KEY_PREFIX=%q must be printable ASCII without spaces", c.KeyPrefix)
		}
	}
	return nil
}

func (c *Config) verifyFromEnv(getenv func(string) string) error {
	raw := strings.TrimSpace(getenv("VERIFY_URL"))
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The url package quotes the input in its errors; VERIFY_URL is
		// configuration, so that is fine.
		return fmt.Errorf("VERIFY_URL: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("VERIFY_URL=%q must be an absolute https:// URL: the pending value is never sent in clear text", u.Redacted())
	}
	if u.User != nil {
		// It would be a second credential, logged with the configuration.
		return fmt.Errorf("VERIFY_URL=%q must not contain user information", u.Redacted())
	}
	c.VerifyURL = u

	c.VerifyMethod = "GET"
	if s := strings.TrimSpace(getenv("VERIFY_METHOD")); s != "" {
		c.VerifyMethod = strings.ToUpper(s)
	}
	switch c.VerifyMethod {
	case "GET", "POST", "HEAD":
	default:
		return fmt.Errorf("VERIFY_METHOD=%q is not one of GET, POST, HEAD", c.VerifyMethod)
	}

	c.VerifyHeader = strings.TrimSpace(getenv("VERIFY_HEADER"))
	if c.VerifyHeader != "" && !validHeaderName(c.VerifyHeader) {
		return fmt.Errorf("VERIFY_HEADER=%q is not a valid HTTP header name", c.VerifyHeader)
	}

	c.VerifyTimeout = defaultVerifyTimeout
	if s := strings.TrimSpace(getenv("VERIFY_TIMEOUT")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("VERIFY_TIMEOUT=%q is not a positive Go duration such as 5s", s)
		}
		c.VerifyTimeout = d
	}

	c.VerifyCAFile = strings.TrimSpace(getenv("VERIFY_CA_FILE"))
	if c.VerifyCAFile != "" {
		roots, err := loadRoots(c.VerifyCAFile)
		if err != nil {
			return err
		}
		c.roots = roots
	}
	return nil
}

// loadRoots returns the system roots plus the certificates of VERIFY_CA_FILE.
func loadRoots(file string) (*x509.CertPool, error) {
	pool, err := httpsclient.LoadRoots(file)
	if err != nil {
		return nil, fmt.Errorf("VERIFY_CA_FILE: %w", err)
	}
	return pool, nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// Describe returns the configuration as log attributes, for a start-up line.
// None of it is secret; the verification URL is reduced to its host so that
// any token in its query stays out of logs.
func (c Config) Describe() []slog.Attr {
	attrs := []slog.Attr{slog.String("kind", string(c.Kind))}
	switch c.Kind {
	case KindPassword:
		p := c.Password
		attrs = append(attrs,
			slog.Int("password_length", p.Length),
			slog.Int("exclude_characters_count", len(p.ExcludeCharacters)),
			slog.Bool("exclude_numbers", p.ExcludeNumbers),
			slog.Bool("exclude_punctuation", p.ExcludePunctuation),
			slog.Bool("exclude_uppercase", p.ExcludeUppercase),
			slog.Bool("exclude_lowercase", p.ExcludeLowercase),
			slog.Bool("include_space", p.IncludeSpace),
			slog.Bool("require_each_included_type", p.RequireEachIncludedType),
		)
	default:
		attrs = append(attrs,
			slog.Int("key_bytes", c.KeyBytes),
			slog.String("key_encoding", c.KeyEncoding),
			slog.String("key_prefix", c.KeyPrefix),
		)
	}
	if c.Field != "" {
		attrs = append(attrs, slog.String("secret_field", c.Field))
	}
	if c.VerifyURL != nil {
		header := c.VerifyHeader
		if header == "" {
			header = "Authorization"
		}
		attrs = append(attrs,
			slog.String("verify_host", c.VerifyURL.Host),
			slog.String("verify_method", c.VerifyMethod),
			slog.String("verify_header", header),
			slog.Duration("verify_timeout", c.VerifyTimeout),
		)
		if c.VerifyCAFile != "" {
			attrs = append(attrs, slog.String("verify_ca_file", c.VerifyCAFile))
		}
	}
	return attrs
}
