package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// clockSkew is allowed between this function's clock and the issuer's.
const clockSkew = 5 * time.Minute

// newKey makes a private key of the configured algorithm.
func newKey(alg string) (crypto.Signer, error) {
	switch alg {
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("unknown key algorithm %q", alg)
}

// newCSR makes a certificate signing request for cn and dns, signed by key.
func newCSR(key crypto.Signer, cn string, dns []string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: cn},
		DNSNames: dns,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate signing request: %w", err)
	}
	return der, nil
}

func encodeKey(key crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", errors.New("encode private key")
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

func encodeCerts(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// parseCerts reads every CERTIFICATE block of a PEM text.
func parseCerts(what, text string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s holds a PEM block of type %q, want CERTIFICATE", what, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// parseKey reads a PEM private key (PKCS#8, PKCS#1 or SEC 1). Its errors
// never include the key.
func parseKey(what, text string) (crypto.Signer, error) {
	b, _ := pem.Decode([]byte(text))
	if b == nil {
		return nil, fmt.Errorf("%s is not a PEM private key", what)
	}
	var k any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("%s is a PEM block of type %q, not a private key", what, b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s cannot be parsed as a private key", what)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s is not a signing key", what)
	}
	return s, nil
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}

// checks is what testSecret verifies about a certificate.
type checks struct {
	cn          string
	dns         []string
	root        *x509.Certificate
	minValidity time.Duration
	now         time.Time
}

// verify checks that s holds a certificate that parses, matches its private
// key, chains to the root, carries exactly the expected names, and is valid
// for at least the minimum. It returns the parsed leaf.
func verify(s certSecret, c checks) (*x509.Certificate, error) {
	certs, err := parseCerts("certificate", s.Certificate)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("certificate holds %d certificates, want 1", len(certs))
	}
	leaf := certs[0]
	key, err := parseKey("privateKey", s.PrivateKey)
	if err != nil {
		return nil, err
	}
	if !keyMatches(leaf, key) {
		return nil, fmt.Errorf("certificate %s does not match the private key", serial(leaf))
	}
	chain, err := parseCerts("certificateChain", s.CertificateChain)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(c.root)
	inter := x509.NewCertPool()
	for _, ch := range chain {
		inter.AddCert(ch)
	}
	// An issuer whose clock runs a little ahead (ACM Private CA sets
	// notBefore to its own now) must not fail a certificate just issued.
	at := c.now
	if ahead := leaf.NotBefore.Sub(at); ahead > 0 && ahead <= clockSkew {
		at = leaf.NotBefore
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("certificate %s does not chain to the root %q: %w", serial(leaf), c.root.Subject.String(), err)
	}
	if leaf.Subject.CommonName != c.cn {
		return nil, fmt.Errorf("certificate %s has common name %q, want %q", serial(leaf), leaf.Subject.CommonName, c.cn)
	}
	got := slices.Clone(leaf.DNSNames)
	want := slices.Clone(c.dns)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(leaf.IPAddresses)+len(leaf.EmailAddresses)+len(leaf.URIs) > 0 {
		return nil, fmt.Errorf("certificate %s carries names %v (and %d other SANs), want exactly %v", serial(leaf), leaf.DNSNames, len(leaf.IPAddresses)+len(leaf.EmailAddresses)+len(leaf.URIs), want)
	}
	if left := leaf.NotAfter.Sub(c.now); left < c.minValidity {
		return nil, fmt.Errorf("certificate %s is valid until %s, less than the minimum of %d days", serial(leaf), leaf.NotAfter.UTC().Format(time.RFC3339), c.minValidity/day)
	}
	return leaf, nil
}

// serial formats a certificate's serial number as colon-separated hex, the
// form ACM and OpenSSL print.
func serial(c *x509.Certificate) string {
	h := fmt.Sprintf("%x", c.SerialNumber)
	if len(h)%2 == 1 {
		h = "0" + h
	}
	parts := make([]string, 0, len(h)/2)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}
