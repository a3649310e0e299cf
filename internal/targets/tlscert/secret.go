package tlscert

import (
	"encoding/json"
	"errors"
	"fmt"
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
