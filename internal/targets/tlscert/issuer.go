package tlscert

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// authority is an issuer, loaded and checked for one invocation.
type authority struct {
	// name is the CA secret's ARN or the Private CA's ARN.
	name string
	// chain is the CA's certificate followed by its issuers; its last
	// certificate is the root that every new certificate must chain to.
	chain    []*x509.Certificate
	notAfter time.Time
	sign     func(ctx context.Context, csr []byte, validity time.Duration) (*x509.Certificate, error)
}

func (a *authority) root() *x509.Certificate { return a.chain[len(a.chain)-1] }

// issuer loads the configured CA.
type issuer interface {
	load(ctx context.Context, now time.Time) (*authority, error)
}

// secretCA is a CA whose certificate and key are held in another secret:
//
//	{"certificate": PEM, "privateKey": PEM, "certificateChain": PEM (optional)}
type secretCA struct {
	id string
	sm *secretsmanager.Client
}

type caSecret struct {
	Certificate      string `json:"certificate"`
	PrivateKey       string `json:"privateKey"`
	CertificateChain string `json:"certificateChain"`
}

func (s *secretCA) load(ctx context.Context, now time.Time) (*authority, error) {
	out, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(s.id), VersionStage: aws.String("AWSCURRENT"),
	})
	if err != nil {
		return nil, fmt.Errorf("issuer CA secret %s: %w", s.id, err)
	}
	name := aws.ToString(out.ARN)
	var v caSecret
	if json.Unmarshal([]byte(aws.ToString(out.SecretString)), &v) != nil {
		return nil, fmt.Errorf("issuer CA secret %s is not a JSON object with certificate and privateKey", name)
	}
	certs, err := parseCerts("certificate of issuer CA secret "+name, v.Certificate)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("issuer CA secret %s: certificate holds %d certificates, want 1", name, len(certs))
	}
	ca := certs[0]
	if err := checkCA(ca, now, name); err != nil {
		return nil, err
	}
	key, err := parseKey("privateKey of issuer CA secret "+name, v.PrivateKey)
	if err != nil {
		return nil, err
	}
	if !keyMatches(ca, key) {
		return nil, fmt.Errorf("issuer CA secret %s: the private key does not match the CA certificate %q", name, ca.Subject.String())
	}
	up, err := parseCerts("certificateChain of issuer CA secret "+name, v.CertificateChain)
	if err != nil {
		return nil, err
	}
	a := &authority{name: name, chain: append([]*x509.Certificate{ca}, up...), notAfter: ca.NotAfter}
	a.sign = func(_ context.Context, csrDER []byte, validity time.Duration) (*x509.Certificate, error) {
		return signWith(ca, key, csrDER, now, validity)
	}
	return a, nil
}

// checkCA refuses a certificate that cannot issue now.
func checkCA(ca *x509.Certificate, now time.Time, name string) error {
	if !ca.BasicConstraintsValid || !ca.IsCA {
		return fmt.Errorf("issuer %s: certificate %q is not a CA (basic constraints CA:TRUE missing)", name, ca.Subject.String())
	}
	if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("issuer %s: certificate %q may not sign certificates (no keyCertSign usage)", name, ca.Subject.String())
	}
	if now.After(ca.NotAfter) {
		return fmt.Errorf("issuer %s: CA certificate %q expired on %s", name, ca.Subject.String(), ca.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(ca.NotBefore) {
		return fmt.Errorf("issuer %s: CA certificate %q is not valid before %s", name, ca.Subject.String(), ca.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// signWith issues a server and client certificate for the CSR.
func signWith(ca *x509.Certificate, caKey crypto.Signer, csrDER []byte, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse certificate signing request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate signing request: %w", err)
	}
	// 128 random bits: unpredictable serials, as the CA/Browser Forum asks.
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageDigitalSignature
	if csr.PublicKeyAlgorithm == x509.RSA {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: csr.Subject.CommonName},
		DNSNames:              csr.DNSNames,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, csr.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// privateCA is an ACM Private CA.
type privateCA struct {
	arn      string
	alg      string
	template string
	pca      *acmpca.Client
	// maxWait bounds the wait for an issued certificate.
	maxWait time.Duration
}

func (p *privateCA) load(ctx context.Context, now time.Time) (*authority, error) {
	d, err := p.pca.DescribeCertificateAuthority(ctx, &acmpca.DescribeCertificateAuthorityInput{CertificateAuthorityArn: aws.String(p.arn)})
	if err != nil {
		return nil, fmt.Errorf("issuer ACM Private CA %s: %w", p.arn, err)
	}
	ca := d.CertificateAuthority
	if ca.Status != pcatypes.CertificateAuthorityStatusActive {
		return nil, fmt.Errorf("issuer ACM Private CA %s is %s, not ACTIVE", p.arn, ca.Status)
	}
	alg := p.alg
	if alg == "" && ca.CertificateAuthorityConfiguration != nil {
		alg = string(ca.CertificateAuthorityConfiguration.SigningAlgorithm)
	}
	c, err := p.pca.GetCertificateAuthorityCertificate(ctx, &acmpca.GetCertificateAuthorityCertificateInput{CertificateAuthorityArn: aws.String(p.arn)})
	if err != nil {
		return nil, fmt.Errorf("issuer ACM Private CA %s: get CA certificate: %w", p.arn, err)
	}
	certs, err := parseCerts("certificate of ACM Private CA "+p.arn, aws.ToString(c.Certificate))
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("issuer ACM Private CA %s returned %d CA certificates, want 1", p.arn, len(certs))
	}
	if err := checkCA(certs[0], now, p.arn); err != nil {
		return nil, err
	}
	up, err := parseCerts("certificate chain of ACM Private CA "+p.arn, aws.ToString(c.CertificateChain))
	if err != nil {
		return nil, err
	}
	a := &authority{name: p.arn, chain: append(certs, up...), notAfter: certs[0].NotAfter}
	if ca.NotAfter != nil && ca.NotAfter.Before(a.notAfter) {
		a.notAfter = *ca.NotAfter
	}
	a.sign = func(ctx context.Context, csrDER []byte, validity time.Duration) (*x509.Certificate, error) {
		return p.issue(ctx, alg, csrDER, validity)
	}
	return a, nil
}

// issue calls IssueCertificate, then waits until GetCertificate returns it:
// ACM Private CA signs asynchronously.
func (p *privateCA) issue(ctx context.Context, alg string, csrDER []byte, validity time.Duration) (*x509.Certificate, error) {
	in := &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(p.arn),
		Csr:                     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}),
		SigningAlgorithm:        pcatypes.SigningAlgorithm(alg),
		Validity:                &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeDays, Value: aws.Int64(int64(validity / day))},
	}
	if p.template != "" {
		in.TemplateArn = aws.String(p.template)
	}
	out, err := p.pca.IssueCertificate(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("issue certificate with ACM Private CA %s: %w", p.arn, err)
	}
	get := &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(p.arn), CertificateArn: out.CertificateArn}
	got, err := acmpca.NewCertificateIssuedWaiter(p.pca, func(o *acmpca.CertificateIssuedWaiterOptions) {
		o.MinDelay = time.Second
		o.MaxDelay = 5 * time.Second
	}).WaitForOutput(ctx, get, p.maxWait)
	if err != nil {
		return nil, fmt.Errorf("wait for certificate %s: %w", aws.ToString(out.CertificateArn), err)
	}
	certs, err := parseCerts("certificate "+aws.ToString(out.CertificateArn), aws.ToString(got.Certificate))
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, errors.New("ACM Private CA returned no single certificate")
	}
	return certs[0], nil
}
