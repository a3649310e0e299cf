package tlscert

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The names of a certificate come from the secret, which whoever may write
// the secret controls; whether the CA may sign them is decided here, from
// the function's configuration alone.

func isWildcard(name string) bool { return strings.HasPrefix(name, "*.") }

// pinned returns the names COMMON_NAME and SUBJECT_ALTERNATIVE_NAMES pin,
// the common name first; none when COMMON_NAME is not set.
func (c Config) pinned() []string {
	if c.CommonName == "" {
		return nil
	}
	out := []string{c.CommonName}
	for _, n := range c.SANs {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// listed reports whether name is in ALLOWED_NAMES or, for a wildcard
// *.parent, parent (for another name, the name itself) equals or lies
// under one of ALLOWED_DNS_SUFFIXES. It does not look at ALLOW_WILDCARDS.
func (c Config) listed(name string) bool {
	if slices.Contains(c.AllowedNames, name) {
		return true
	}
	host := strings.TrimPrefix(name, "*.")
	for _, s := range c.AllowedSuffixes {
		if host == s || strings.HasSuffix(host, "."+s) {
			return true
		}
	}
	return false
}

// allow says why the CA may not sign name, or returns nil.
func (c Config) allow(name string) error {
	if isWildcard(name) && !c.AllowWildcards {
		return errors.New("it is a wildcard and ALLOW_WILDCARDS is not true")
	}
	if slices.Contains(c.pinned(), name) || c.listed(name) {
		return nil
	}
	return fmt.Errorf("it is neither under ALLOWED_DNS_SUFFIXES %s nor in ALLOWED_NAMES %s", listText(c.AllowedSuffixes), listText(c.AllowedNames))
}

func listText(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return "[" + strings.Join(names, ",") + "]"
}

// refused is the error for a name of the secret that may not be signed. It
// names the field and the name; the engine adds the step and the secret.
func refused(field, name string, why error) error {
	return fmt.Errorf("field %q of the secret asks for %q, which this function may not sign: %w", field, name, why)
}

// names returns the common name and the DNS names a certificate must carry,
// from the secret, after checking them against the configuration:
//
//   - with COMMON_NAME set, the names are the pinned ones; the secret may
//     leave its names out or repeat them, and is refused if it asks for
//     any other name or lacks a pinned one;
//   - otherwise every name of the secret must be allowed by
//     ALLOWED_DNS_SUFFIXES or ALLOWED_NAMES (and ALLOW_WILDCARDS for a
//     wildcard).
//
// The common name is always among the DNS names, since clients match names
// against the SANs only.
func names(cfg Config, cur certSecret) (cn string, dns []string, err error) {
	secretCN := strings.ToLower(strings.TrimSpace(cur.CommonName))
	secretSANs := make([]string, 0, len(cur.SANs))
	for _, n := range cur.SANs {
		secretSANs = append(secretSANs, strings.ToLower(strings.TrimSpace(n)))
	}
	if pins := cfg.pinned(); len(pins) > 0 {
		if secretCN != "" && secretCN != cfg.CommonName {
			return "", nil, refused("commonName", secretCN, fmt.Errorf("COMMON_NAME pins the common name to %q", cfg.CommonName))
		}
		if len(secretSANs) == 0 {
			return cfg.CommonName, pins, nil
		}
		for _, n := range secretSANs {
			if !slices.Contains(pins, n) {
				return "", nil, refused("subjectAlternativeNames", n, fmt.Errorf("COMMON_NAME and SUBJECT_ALTERNATIVE_NAMES pin the names to %s", listText(pins)))
			}
		}
		for _, n := range pins[1:] {
			if !slices.Contains(secretSANs, n) {
				return "", nil, fmt.Errorf("field %q of the secret lacks %q, which SUBJECT_ALTERNATIVE_NAMES pins: list exactly %s or leave the field out", "subjectAlternativeNames", n, listText(pins[1:]))
			}
		}
		return cfg.CommonName, pins, nil
	}
	if secretCN == "" {
		return "", nil, errors.New("no common name: the secret's commonName is empty (or set COMMON_NAME)")
	}
	if err := checkDNSName(secretCN); err != nil {
		return "", nil, fmt.Errorf("field %q of the secret: %w", "commonName", err)
	}
	if err := cfg.allow(secretCN); err != nil {
		return "", nil, refused("commonName", secretCN, err)
	}
	dns = []string{secretCN}
	for _, n := range secretSANs {
		if err := checkDNSName(n); err != nil {
			return "", nil, fmt.Errorf("field %q of the secret: %w", "subjectAlternativeNames", err)
		}
		if err := cfg.allow(n); err != nil {
			return "", nil, refused("subjectAlternativeNames", n, err)
		}
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	return secretCN, dns, nil
}
