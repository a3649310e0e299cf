package tlscert

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// Target rotates a TLS certificate.
type Target struct {
	cfg    Config
	issuer issuer
	acm    *acm.Client
	now    func() time.Time
	tags   tagger // expiry.go
}

var _ rotation.Target = (*Target)(nil)

// New returns a Target for cfg, calling AWS with awsCfg.
func New(cfg Config, awsCfg aws.Config) *Target {
	t := &Target{cfg: cfg, now: time.Now, tags: secretsmanager.NewFromConfig(awsCfg)}
	if cfg.CASecretID != "" {
		t.issuer = &secretCA{id: cfg.CASecretID, sm: secretsmanager.NewFromConfig(awsCfg)}
	} else {
		t.issuer = &privateCA{arn: cfg.PCAArn, alg: cfg.PCASigningAlg, template: cfg.PCATemplateArn,
			pca: acmpca.NewFromConfig(awsCfg), maxWait: 2 * time.Minute}
	}
	if cfg.ACMCertificateArn != "" {
		t.acm = acm.NewFromConfig(awsCfg)
	}
	return t
}

// Create makes a new key and CSR, has the issuer sign it, and returns the
// new version. Nothing leaves the function but the returned value, which the
// engine stores as AWSPENDING.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	log := logger(req.Log)
	now := t.now()
	cur, err := parseSecret(req.Current.Value)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("current version: %w", err)
	}
	t.logExpiry(ctx, log, cur, now)
	cn, dns, err := names(t.cfg, cur)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	ca, err := t.issuer.load(ctx, now)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	if end := now.Add(t.cfg.Validity); end.After(ca.notAfter) {
		return rotation.CreateResponse{}, fmt.Errorf("VALIDITY_DAYS=%d would end on %s, after the issuer %s expires on %s: the issuer cannot sign it",
			t.cfg.Validity/day, end.UTC().Format(time.RFC3339), ca.name, ca.notAfter.UTC().Format(time.RFC3339))
	}
	key, err := newKey(t.cfg.KeyAlgorithm)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	csr, err := newCSR(key, cn, dns)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	leaf, err := ca.sign(ctx, csr, t.cfg.Validity)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	next := cur
	next.CommonName = cn
	next.SANs = dns[1:]
	if len(next.SANs) == 0 {
		next.SANs = nil
	}
	next.Certificate = encodeCerts(leaf)
	next.CertificateChain = encodeCerts(ca.chain...)
	next.PrivateKey = keyPEM
	next.SerialNumber = serial(leaf)
	next.NotBefore = leaf.NotBefore.UTC().Format(time.RFC3339)
	next.NotAfter = leaf.NotAfter.UTC().Format(time.RFC3339)
	next.Issuer = ca.name
	// Check before storing: a certificate that would fail testSecret is
	// better refused here, with the reason.
	if _, err := verify(next, t.checks(cn, dns, ca, now)); err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("new certificate from %s: %w", ca.name, err)
	}
	value, err := next.encode()
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	log.LogAttrs(ctx, slog.LevelInfo, "certificate issued",
		slog.String("serial", next.SerialNumber), slog.String("issuer", ca.name),
		slog.String("common_name", cn), slog.Any("dns_names", dns),
		slog.String("key_algorithm", t.cfg.KeyAlgorithm), slog.String("not_after", next.NotAfter))
	return rotation.CreateResponse{Value: value}, nil
}

// Set verifies the pending certificate and, when ACM_CERTIFICATE_ARN is
// set, re-imports it into ACM under the same ARN. Importing the same
// certificate again changes nothing, so a rerun is harmless.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	pend, _, err := t.verifyPending(ctx, req)
	if err != nil {
		return err
	}
	if t.acm == nil {
		return nil
	}
	_, err = t.acm.ImportCertificate(ctx, &acm.ImportCertificateInput{
		CertificateArn:   aws.String(t.cfg.ACMCertificateArn),
		Certificate:      []byte(pend.Certificate),
		PrivateKey:       []byte(pend.PrivateKey),
		CertificateChain: []byte(pend.CertificateChain),
	})
	if err != nil {
		return fmt.Errorf("re-import certificate %s into ACM %s: %w", pend.SerialNumber, t.cfg.ACMCertificateArn, err)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "certificate imported into ACM",
		slog.String("acm_certificate_arn", t.cfg.ACMCertificateArn), slog.String("serial", pend.SerialNumber))
	return nil
}

// Test verifies the pending certificate against the issuer's root, and that
// ACM serves it when ACM_CERTIFICATE_ARN is set.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	pend, leaf, err := t.verifyPending(ctx, req)
	if err != nil {
		return err
	}
	if t.acm != nil {
		out, err := t.acm.GetCertificate(ctx, &acm.GetCertificateInput{CertificateArn: aws.String(t.cfg.ACMCertificateArn)})
		if err != nil {
			return fmt.Errorf("read ACM certificate %s: %w", t.cfg.ACMCertificateArn, err)
		}
		certs, err := parseCerts("ACM certificate "+t.cfg.ACMCertificateArn, aws.ToString(out.Certificate))
		if err != nil {
			return err
		}
		if len(certs) != 1 || !certs[0].Equal(leaf) {
			got := "none"
			if len(certs) > 0 {
				got = serial(certs[0])
			}
			return fmt.Errorf("ACM certificate %s holds serial %s, not the pending certificate %s", t.cfg.ACMCertificateArn, got, pend.SerialNumber)
		}
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "pending certificate verified",
		slog.String("serial", pend.SerialNumber), slog.String("not_after", pend.NotAfter))
	return nil
}

func (t *Target) verifyPending(ctx context.Context, req *rotation.StepRequest) (certSecret, *x509.Certificate, error) {
	now := t.now()
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return certSecret{}, nil, err
	}
	pend, err := parseSecret(pv.Value)
	if err != nil {
		return certSecret{}, nil, fmt.Errorf("pending version: %w", err)
	}
	cv, err := req.Versions.Current(ctx)
	if err != nil {
		return certSecret{}, nil, err
	}
	cur, err := parseSecret(cv.Value)
	if err != nil {
		return certSecret{}, nil, fmt.Errorf("current version: %w", err)
	}
	// The names come from the configuration or the current version, never
	// from the pending one: a pending version written by hand cannot
	// widen them.
	cn, dns, err := names(t.cfg, cur)
	if err != nil {
		return certSecret{}, nil, err
	}
	ca, err := t.issuer.load(ctx, now)
	if err != nil {
		return certSecret{}, nil, err
	}
	leaf, err := verify(pend, t.checks(cn, dns, ca, now))
	if err != nil {
		return certSecret{}, nil, fmt.Errorf("pending version: %w", err)
	}
	return pend, leaf, nil
}

func (t *Target) checks(cn string, dns []string, ca *authority, now time.Time) checks {
	return checks{cn: cn, dns: dns, root: ca.root(), minValidity: t.cfg.MinValidity, now: now}
}

// logExpiry logs when the current certificate expires, and warns when that
// is before the next scheduled rotation: if this rotation fails, the
// certificate will expire before the next try.
func (t *Target) logExpiry(ctx context.Context, log *slog.Logger, cur certSecret, now time.Time) {
	if cur.Certificate == "" {
		log.LogAttrs(ctx, slog.LevelInfo, "current version holds no certificate yet: issuing the first one")
		return
	}
	certs, err := parseCerts("current certificate", cur.Certificate)
	if err != nil || len(certs) == 0 {
		log.LogAttrs(ctx, slog.LevelWarn, "current certificate cannot be parsed", slog.Any("error", err))
		return
	}
	c := certs[0]
	attrs := []slog.Attr{
		slog.String("serial", serial(c)),
		slog.String("not_after", c.NotAfter.UTC().Format(time.RFC3339)),
		slog.Float64("days_left", float64(c.NotAfter.Sub(now)/time.Hour)/24),
	}
	if next := now.Add(t.cfg.RotationInterval); c.NotAfter.Before(next) {
		attrs = append(attrs, slog.String("next_rotation", next.UTC().Format(time.RFC3339)))
		log.LogAttrs(ctx, slog.LevelWarn, "current certificate expires before the next scheduled rotation", attrs...)
		return
	}
	log.LogAttrs(ctx, slog.LevelInfo, "current certificate", attrs...)
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
