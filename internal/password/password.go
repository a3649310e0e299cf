// Package password generates passwords and random keys with crypto/rand.
//
// Policy follows the parameters of the AWS Secrets Manager GetRandomPassword
// API, so that a rotation function configured from the same settings makes
// passwords of the same shape as the service would.
package password

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// MaxLength is the longest password GetRandomPassword makes.
const MaxLength = 4096

// MinLength is the shortest password a function may be configured to make
// (PolicyFromEnv): the SAM template's PasswordLength has the same minimum,
// so a function configured by hand cannot be weaker than one deployed from
// the template. Policy.Validate alone accepts shorter policies, for callers
// that build one in code.
const MinLength = 8

// The character classes of GetRandomPassword.
const (
	Lowercase   = "abcdefghijklmnopqrstuvwxyz"
	Uppercase   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	Numbers     = "0123456789"
	Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	Space       = " "
)

// Policy describes the passwords to generate. Its fields mean what the
// parameters of the same names mean to GetRandomPassword; start from
// DefaultPolicy, because the zero Policy has no length and does not require
// each type.
type Policy struct {
	// Length is the number of characters, 1 to MaxLength.
	Length int
	// ExcludeCharacters are removed from every class.
	ExcludeCharacters  string
	ExcludeNumbers     bool
	ExcludePunctuation bool
	ExcludeUppercase   bool
	ExcludeLowercase   bool
	// IncludeSpace adds the space character as a class of its own.
	IncludeSpace bool
	// RequireEachIncludedType makes every password contain at least one
	// character of each included class that ExcludeCharacters left
	// non-empty (the space counts as a class when IncludeSpace is set).
	RequireEachIncludedType bool
}

// DefaultPolicy returns the defaults of GetRandomPassword: 32 characters from
// letters, digits and punctuation, at least one of each.
func DefaultPolicy() Policy {
	return Policy{Length: 32, RequireEachIncludedType: true}
}

// classes returns the included classes with ExcludeCharacters removed;
// classes left empty are dropped, since no character of them can appear.
func (p Policy) classes() []string {
	var all []string
	if !p.ExcludeLowercase {
		all = append(all, Lowercase)
	}
	if !p.ExcludeUppercase {
		all = append(all, Uppercase)
	}
	if !p.ExcludeNumbers {
		all = append(all, Numbers)
	}
	if !p.ExcludePunctuation {
		all = append(all, Punctuation)
	}
	if p.IncludeSpace {
		all = append(all, Space)
	}
	var out []string
	for _, c := range all {
		c = strings.Map(func(r rune) rune {
			if strings.ContainsRune(p.ExcludeCharacters, r) {
				return -1
			}
			return r
		}, c)
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// Validate reports whether p can produce a password. The messages name the
// environment variables of PolicyFromEnv, which is where a policy comes from
// in a deployed function.
func (p Policy) Validate() error {
	if p.Length < 1 || p.Length > MaxLength {
		return fmt.Errorf("PASSWORD_LENGTH must be between 1 and %d, got %d", MaxLength, p.Length)
	}
	classes := p.classes()
	if len(classes) == 0 {
		return errors.New("every character class is excluded: check EXCLUDE_* and EXCLUDE_CHARACTERS")
	}
	if p.RequireEachIncludedType && p.Length < len(classes) {
		return fmt.Errorf("PASSWORD_LENGTH %d is shorter than the %d character classes that REQUIRE_EACH_INCLUDED_TYPE requires", p.Length, len(classes))
	}
	return nil
}

// Generate returns a new password. Every character is drawn uniformly from
// the allowed alphabet; with RequireEachIncludedType, one character of each
// class is drawn from that class first and the result is shuffled, so the
// guaranteed characters sit at random positions.
func (p Policy) Generate() (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	classes := p.classes()
	alphabet := strings.Join(classes, "")
	out := make([]byte, 0, p.Length)
	if p.RequireEachIncludedType {
		for _, c := range classes {
			b, err := pick(c)
			if err != nil {
				return "", err
			}
			out = append(out, b)
		}
	}
	for len(out) < p.Length {
		b, err := pick(alphabet)
		if err != nil {
			return "", err
		}
		out = append(out, b)
	}
	if err := shuffle(out); err != nil {
		return "", err
	}
	return string(out), nil
}

// pick returns a uniformly chosen byte of s, which is ASCII.
func pick(s string) (byte, error) {
	i, err := intn(len(s))
	if err != nil {
		return 0, err
	}
	return s[i], nil
}

// intn returns a uniform integer in [0, n). crypto/rand.Int samples by
// rejection, so there is no modulo bias.
func intn(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("read random number: %w", err)
	}
	return int(v.Int64()), nil
}

// shuffle permutes b uniformly (Fisher–Yates).
func shuffle(b []byte) error {
	for i := len(b) - 1; i > 0; i-- {
		j, err := intn(i + 1)
		if err != nil {
			return err
		}
		b[i], b[j] = b[j], b[i]
	}
	return nil
}

// PolicyFromEnv reads a policy from the environment through getenv (os.Getenv
// in production). Unset variables keep the defaults of DefaultPolicy:
//
//	PASSWORD_LENGTH             integer 8..4096 (MinLength..MaxLength), default 32
//	EXCLUDE_CHARACTERS          characters never used, default none
//	EXCLUDE_NUMBERS             boolean, default false
//	EXCLUDE_PUNCTUATION         boolean, default false
//	EXCLUDE_UPPERCASE           boolean, default false
//	EXCLUDE_LOWERCASE           boolean, default false
//	INCLUDE_SPACE               boolean, default false
//	REQUIRE_EACH_INCLUDED_TYPE  boolean, default true
//
// Booleans take the forms of strconv.ParseBool (true, false, 1, 0, ...).
// The policy is validated, so a bad configuration fails at start-up rather
// than in the middle of a rotation.
func PolicyFromEnv(getenv func(string) string) (Policy, error) {
	p := DefaultPolicy()
	if s := getenv("PASSWORD_LENGTH"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return Policy{}, fmt.Errorf("PASSWORD_LENGTH=%q is not an integer", s)
		}
		if n < MinLength || n > MaxLength {
			return Policy{}, fmt.Errorf("PASSWORD_LENGTH must be between %d and %d, got %d", MinLength, MaxLength, n)
		}
		p.Length = n
	}
	p.ExcludeCharacters = getenv("EXCLUDE_CHARACTERS")
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"EXCLUDE_NUMBERS", &p.ExcludeNumbers},
		{"EXCLUDE_PUNCTUATION", &p.ExcludePunctuation},
		{"EXCLUDE_UPPERCASE", &p.ExcludeUppercase},
		{"EXCLUDE_LOWERCASE", &p.ExcludeLowercase},
		{"INCLUDE_SPACE", &p.IncludeSpace},
		{"REQUIRE_EACH_INCLUDED_TYPE", &p.RequireEachIncludedType},
	} {
		s := getenv(b.name)
		if s == "" {
			continue
		}
		v, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return Policy{}, fmt.Errorf("%s=%q is not a boolean (use true or false)", b.name, s)
		}
		*b.dst = v
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) ([]byte, error) {
	if n < 1 {
		return nil, fmt.Errorf("random key length must be positive, got %d", n)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("read %d random bytes: %w", n, err)
	}
	return b, nil
}

// The encodings EncodeKey knows.
const (
	EncodingHex       = "hex"
	EncodingBase64    = "base64"    // standard alphabet, padded
	EncodingBase64URL = "base64url" // URL alphabet, unpadded
)

// encodings lists the encodings EncodeKey accepts, for its error message.
var encodings = []string{EncodingHex, EncodingBase64, EncodingBase64URL}

// EncodeKey encodes the key b as text. base64url is unpadded because keys
// usually travel in URLs and headers, where '=' would need escaping.
func EncodeKey(b []byte, encoding string) (string, error) {
	switch encoding {
	case EncodingHex:
		return hex.EncodeToString(b), nil
	case EncodingBase64:
		return base64.StdEncoding.EncodeToString(b), nil
	case EncodingBase64URL:
		return base64.RawURLEncoding.EncodeToString(b), nil
	}
	return "", fmt.Errorf("unknown key encoding %q (want one of %s)", encoding, strings.Join(encodings, ", "))
}
