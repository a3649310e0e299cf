package tlscert

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// certSecret is one version of the secret. Certificate, chain and key are
// PEM; notBefore and notAfter are RFC 3339 times in UTC.
type certSecret struct {
	CommonName       string   `json:"commonName"`
	SANs             []string `json:"subjectAlternativeNames,omitempty"`
	Certificate      string   `json:"certificate,omitempty"`
	CertificateChain string   `json:"certificateChain,omitempty"`
	PrivateKey       string   `json:"privateKey,omitempty"`
	SerialNumber     string   `json:"serialNumber,omitempty"`
	NotBefore        string   `json:"notBefore,omitempty"`
	NotAfter         string   `json:"notAfter,omitempty"`
	// Issuer names the CA secret or ACM Private CA that signed it.
	Issuer string `json:"issuer,omitempty"`
	// extra keeps fields this function does not know.
	extra map[string]json.RawMessage
}

var knownFields = []string{"commonName", "subjectAlternativeNames", "certificate", "certificateChain", "privateKey", "serialNumber", "notBefore", "notAfter", "issuer"}

// parseSecret reads a version; its errors never quote the value.
func parseSecret(value string) (certSecret, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &all); err != nil || all == nil {
		return certSecret{}, errors.New("secret is not a JSON object")
	}
	var s certSecret
	if err := json.Unmarshal([]byte(value), &s); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return certSecret{}, fmt.Errorf("field %q of the secret has the wrong JSON type", te.Field)
		}
		return certSecret{}, errors.New("secret is not a JSON object of the certificate format")
	}
	for _, k := range knownFields {
		delete(all, k)
	}
	s.extra = all
	return s, nil
}

// encode returns the secret as JSON, with the unknown fields kept.
func (s certSecret) encode() (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", errors.New("encode secret")
	}
	if len(s.extra) == 0 {
		return string(b), nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return "", errors.New("encode secret")
	}
	for k, v := range s.extra {
		all[k] = v
	}
	b, err = json.Marshal(all)
	if err != nil {
		return "", errors.New("encode secret")
	}
	return string(b), nil
}

// names returns the common name and the DNS names a certificate must carry:
// the configured ones when set, else the secret's. The common name is always
// among the DNS names, since clients match names against the SANs only.
func names(cfg Config, cur certSecret) (cn string, dns []string, err error) {
	cn = cfg.CommonName
	if cn == "" {
		cn = strings.ToLower(strings.TrimSpace(cur.CommonName))
		if cn == "" {
			return "", nil, errors.New("no common name: set COMMON_NAME or the secret's commonName")
		}
		if err := checkDNSName(cn); err != nil {
			return "", nil, fmt.Errorf("commonName of the secret: %w", err)
		}
	}
	sans := cfg.SANs
	if len(sans) == 0 {
		for _, n := range cur.SANs {
			n = strings.ToLower(strings.TrimSpace(n))
			if err := checkDNSName(n); err != nil {
				return "", nil, fmt.Errorf("subjectAlternativeNames of the secret: %w", err)
			}
			sans = append(sans, n)
		}
	}
	dns = []string{cn}
	for _, n := range sans {
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	return cn, dns, nil
}
