// Package tlscert is the rotation target for TLS certificates. Each
// rotation makes a new private key and a certificate signing request, has it
// signed by the configured issuer — a CA whose certificate and key are held
// in another secret, or an ACM Private CA — and stores certificate, key and
// chain as the pending version. Optionally finishSecret re-imports the new
// certificate into ACM under the same certificate ARN, once it has passed
// testSecret and is AWSCURRENT.
//
// The private key is generated inside createSecret and leaves the function
// only as part of the pending version that createSecret stores. A
// certificate that was issued but never stored (the function died between
// issuing and PutSecretValue) is harmless: a certificate is public data, and
// its private key existed only in the memory of the process that died, so
// nobody can ever use it. The rerun makes a new key and a new certificate.
//
// Environment of the Lambda function:
//
//	Variable                   Default      Meaning
//	CA_SECRET_ID               (none)       secret holding the issuer CA: {"certificate","privateKey","certificateChain"}
//	ACM_PCA_ARN                (none)       ACM Private CA that issues the certificates
//	                                        (exactly one of CA_SECRET_ID and ACM_PCA_ARN)
//	ACM_PCA_SIGNING_ALGORITHM  (the CA's)   e.g. SHA256WITHECDSA, SHA256WITHRSA
//	ACM_PCA_TEMPLATE_ARN       (none)       certificate template; AWS uses EndEntityCertificate/V1 without it
//	KEY_ALGORITHM              ECDSA_P256   ECDSA_P256, RSA_2048 or RSA_3072
//	VALIDITY_DAYS              90           validity of each new certificate, 1..3650
//	MIN_VALIDITY_DAYS          VALIDITY/2   testSecret requires at least this much validity left
//	ROTATION_INTERVAL_DAYS     30           the rotation schedule; a warning is logged when the
//	                                        current certificate expires before the next rotation
//	ALLOWED_DNS_SUFFIXES       (none)       comma-separated DNS suffixes: a name equal to one or under
//	                                        it (at a label boundary) may be signed
//	ALLOWED_NAMES              (none)       comma-separated exact DNS names that may be signed
//	ALLOW_WILDCARDS            false        let a name of the form *.parent be signed when parent is
//	                                        allowed by a suffix, or the wildcard is in ALLOWED_NAMES
//	COMMON_NAME                (none)       pins the common name of every certificate; a secret whose
//	                                        commonName differs is refused
//	SUBJECT_ALTERNATIVE_NAMES  (none)       with COMMON_NAME: comma-separated DNS names that pin the
//	                                        SANs; a secret that lists other SANs is refused
//	ACM_CERTIFICATE_ARN        (none)       re-import each new certificate into this ACM certificate,
//	                                        in finishSecret, once it is AWSCURRENT
//
// The names a certificate carries come from the secret, which whoever may
// write the secret controls; the names the CA may sign come from this
// configuration only. With none of ALLOWED_DNS_SUFFIXES, ALLOWED_NAMES and
// COMMON_NAME set the function signs nothing: the configuration is refused.
package tlscert

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Key algorithms.
const (
	KeyECDSAP256 = "ECDSA_P256"
	KeyRSA2048   = "RSA_2048"
	KeyRSA3072   = "RSA_3072"
)

const day = 24 * time.Hour

// Config is the configuration of a Target.
type Config struct {
	CASecretID       string
	PCAArn           string
	PCASigningAlg    string
	PCATemplateArn   string
	KeyAlgorithm     string
	Validity         time.Duration
	MinValidity      time.Duration
	RotationInterval time.Duration
	// AllowedSuffixes and AllowedNames are the names the CA may sign: a
	// name equal to or under a suffix, or one of the exact names. Every
	// name a secret asks for must be among them.
	AllowedSuffixes []string
	AllowedNames    []string
	// AllowWildcards lets a wildcard name (*.parent) be signed when it is
	// allowed as above; without it every wildcard is refused.
	AllowWildcards bool
	// CommonName, when set, pins the common name of every certificate,
	// and SANs its other names: a secret that asks for different names is
	// refused, never silently overridden. Pinned names are allowed names.
	CommonName string
	SANs       []string
	// ACMCertificateArn, when set, receives each new certificate once it
	// is AWSCURRENT.
	ACMCertificateArn string
}

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		CASecretID:        env("CA_SECRET_ID"),
		PCAArn:            env("ACM_PCA_ARN"),
		PCASigningAlg:     env("ACM_PCA_SIGNING_ALGORITHM"),
		PCATemplateArn:    env("ACM_PCA_TEMPLATE_ARN"),
		KeyAlgorithm:      strings.ToUpper(env("KEY_ALGORITHM")),
		CommonName:        strings.ToLower(env("COMMON_NAME")),
		ACMCertificateArn: env("ACM_CERTIFICATE_ARN"),
	}
	switch {
	case c.CASecretID == "" && c.PCAArn == "":
		return Config{}, errors.New("no issuer: set CA_SECRET_ID (a CA held in a secret) or ACM_PCA_ARN (an ACM Private CA)")
	case c.CASecretID != "" && c.PCAArn != "":
		return Config{}, errors.New("CA_SECRET_ID and ACM_PCA_ARN are both set: choose one issuer")
	case c.PCAArn == "" && (c.PCASigningAlg != "" || c.PCATemplateArn != ""):
		return Config{}, errors.New("ACM_PCA_SIGNING_ALGORITHM or ACM_PCA_TEMPLATE_ARN is set without ACM_PCA_ARN")
	}
	switch c.KeyAlgorithm {
	case "":
		c.KeyAlgorithm = KeyECDSAP256
	case KeyECDSAP256, KeyRSA2048, KeyRSA3072:
	default:
		return Config{}, fmt.Errorf("KEY_ALGORITHM=%q is not one of %s, %s, %s", c.KeyAlgorithm, KeyECDSAP256, KeyRSA2048, KeyRSA3072)
	}
	days := func(name string, def, lo, hi int) (time.Duration, error) {
		s := env(name)
		if s == "" {
			return time.Duration(def) * day, nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s=%q is not a whole number of days between %d and %d", name, s, lo, hi)
		}
		return time.Duration(n) * day, nil
	}
	var err error
	if c.Validity, err = days("VALIDITY_DAYS", 90, 1, 3650); err != nil {
		return Config{}, err
	}
	if c.MinValidity, err = days("MIN_VALIDITY_DAYS", int(c.Validity/day)/2, 0, 3650); err != nil {
		return Config{}, err
	}
	if c.MinValidity > c.Validity {
		return Config{}, fmt.Errorf("MIN_VALIDITY_DAYS=%d is more than VALIDITY_DAYS=%d: no new certificate could pass testSecret", c.MinValidity/day, c.Validity/day)
	}
	if c.RotationInterval, err = days("ROTATION_INTERVAL_DAYS", 30, 1, 1000); err != nil {
		return Config{}, err
	}
	if err := c.namesFromEnv(env); err != nil {
		return Config{}, err
	}
	return c, nil
}

// namesFromEnv reads the names the CA may sign. It refuses a configuration
// that allows no name at all: a function that holds a CA must not sign
// whatever a secret's writer asks for.
func (c *Config) namesFromEnv(env func(string) string) error {
	if s := env("ALLOW_WILDCARDS"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("ALLOW_WILDCARDS=%q is not a boolean (use true or false)", s)
		}
		c.AllowWildcards = b
	}
	var err error
	if c.AllowedSuffixes, err = dnsList("ALLOWED_DNS_SUFFIXES", env("ALLOWED_DNS_SUFFIXES")); err != nil {
		return err
	}
	for _, s := range c.AllowedSuffixes {
		if isWildcard(s) {
			return fmt.Errorf("ALLOWED_DNS_SUFFIXES: %q is a wildcard; a suffix already allows every name under it (ALLOW_WILDCARDS lets wildcard names be signed)", s)
		}
	}
	if c.AllowedNames, err = dnsList("ALLOWED_NAMES", env("ALLOWED_NAMES")); err != nil {
		return err
	}
	if c.SANs, err = dnsList("SUBJECT_ALTERNATIVE_NAMES", env("SUBJECT_ALTERNATIVE_NAMES")); err != nil {
		return err
	}
	if c.CommonName != "" {
		if err := checkDNSName(c.CommonName); err != nil {
			return fmt.Errorf("COMMON_NAME: %w", err)
		}
	} else if len(c.SANs) > 0 {
		return errors.New("SUBJECT_ALTERNATIVE_NAMES is set without COMMON_NAME: pinned names need their common name")
	}
	for _, v := range []struct {
		variable string
		names    []string
	}{{"ALLOWED_NAMES", c.AllowedNames}, {"COMMON_NAME or SUBJECT_ALTERNATIVE_NAMES", c.pinned()}} {
		for _, n := range v.names {
			if isWildcard(n) && !c.AllowWildcards {
				return fmt.Errorf("%s: %q is a wildcard name and ALLOW_WILDCARDS is not true", v.variable, n)
			}
		}
	}
	switch {
	case len(c.AllowedSuffixes)+len(c.AllowedNames) > 0:
		// Pinned names outside the allow-list would contradict it.
		for _, n := range c.pinned() {
			if !c.listed(n) {
				return fmt.Errorf("COMMON_NAME or SUBJECT_ALTERNATIVE_NAMES pins %q, which is neither under ALLOWED_DNS_SUFFIXES nor in ALLOWED_NAMES", n)
			}
		}
	case c.CommonName == "":
		return errors.New("no name may be signed: set ALLOWED_DNS_SUFFIXES, ALLOWED_NAMES or COMMON_NAME (the names the CA signs come from the function's configuration, never from the secret alone)")
	}
	return nil
}

// dnsList reads a comma-separated list of DNS names, lower-cased and without
// duplicates. For a list of suffixes a leading dot is dropped, so that
// ".example.com", as many allow-lists write a suffix, means example.com.
func dnsList(variable, value string) ([]string, error) {
	var out []string
	for _, n := range strings.Split(value, ",") {
		n = strings.ToLower(strings.TrimSpace(n))
		if variable == "ALLOWED_DNS_SUFFIXES" {
			n = strings.TrimPrefix(n, ".")
		}
		if n == "" {
			continue
		}
		if err := checkDNSName(n); err != nil {
			return nil, fmt.Errorf("%s: %w", variable, err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Describe returns the configuration as log attributes; none of it is secret.
func (c Config) Describe() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("key_algorithm", c.KeyAlgorithm),
		slog.Int("validity_days", int(c.Validity/day)),
		slog.Int("min_validity_days", int(c.MinValidity/day)),
		slog.Int("rotation_interval_days", int(c.RotationInterval/day)),
	}
	if c.CASecretID != "" {
		attrs = append(attrs, slog.String("issuer", "secret"), slog.String("ca_secret_id", c.CASecretID))
	} else {
		attrs = append(attrs, slog.String("issuer", "acm-pca"), slog.String("acm_pca_arn", c.PCAArn))
	}
	if c.CommonName != "" {
		attrs = append(attrs, slog.String("common_name", c.CommonName))
	}
	if len(c.SANs) > 0 {
		attrs = append(attrs, slog.String("subject_alternative_names", strings.Join(c.SANs, ",")))
	}
	if len(c.AllowedSuffixes) > 0 {
		attrs = append(attrs, slog.String("allowed_dns_suffixes", strings.Join(c.AllowedSuffixes, ",")))
	}
	if len(c.AllowedNames) > 0 {
		attrs = append(attrs, slog.String("allowed_names", strings.Join(c.AllowedNames, ",")))
	}
	attrs = append(attrs, slog.Bool("allow_wildcards", c.AllowWildcards))
	if c.ACMCertificateArn != "" {
		attrs = append(attrs, slog.String("acm_certificate_arn", c.ACMCertificateArn))
	}
	return attrs
}

// checkDNSName accepts a host name of RFC 1123 labels, with an optional
// leading "*." wildcard label.
func checkDNSName(name string) error {
	host := strings.TrimPrefix(name, "*.")
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a valid DNS name: length must be 1..253", name)
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) == 0 || len(label) > 63 {
			return fmt.Errorf("%q is not a valid DNS name: empty or over-long label", name)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a valid DNS name: a label starts or ends with '-'", name)
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-') {
				return fmt.Errorf("%q is not a valid DNS name: character %q", name, b)
			}
		}
	}
	return nil
}
