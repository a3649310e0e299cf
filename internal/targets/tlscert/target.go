package tlscert

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
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
	// loaded keeps the issuer that a step of a rotation loaded, for the
	// later steps of the same rotation in this instance.
	loaded loadedCA
	tags   tagger // expiry.go
}

// loadedCA is the issuer as one rotation loaded it. The steps that follow
// createSecret verify the certificate it issued against the issuer that
// signed it, so they need not read the CA secret again; another rotation
// loads it afresh.
type loadedCA struct {
	mu    sync.Mutex
	token string
	ca    *authority
}

// authority returns the issuer for the rotation token, loading it unless
// a step of the same rotation already did and it is still valid at now.
func (t *Target) authority(ctx context.Context, token string, now time.Time) (*authority, error) {
	t.loaded.mu.Lock()
	defer t.loaded.mu.Unlock()
	if t.loaded.ca != nil && t.loaded.token == token && now.Before(t.loaded.ca.notAfter) {
		return t.loaded.ca, nil
	}
	ca, err := t.issuer.load(ctx, now)
	if err != nil {
		return nil, err
	}
	t.loaded.token, t.loaded.ca = token, ca
	return ca, nil
}

var (
	_ rotation.Target   = (*Target)(nil)
	_ rotation.Finisher = (*Target)(nil)
)

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
	ca, err := t.authority(ctx, req.Secret.Token, now)
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

// Set verifies the pending certificate. Nothing outside Secrets Manager
// changes before the certificate has passed testSecret: the ACM re-import,
// if any, happens in Finish.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	_, _, err := t.verifyPending(ctx, req)
	return err
}

// Test verifies the pending certificate against the issuer's root and the
// configured names. When ACM_CERTIFICATE_ARN is set it also reads that
// certificate, so that a wrong ARN or a missing permission fails here,
// before AWSCURRENT moves, rather than in Finish.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	pend, _, err := t.verifyPending(ctx, req)
	if err != nil {
		return err
	}
	if t.acm != nil {
		if _, err := t.acmLeaf(ctx); err != nil {
			return err
		}
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "pending certificate verified",
		slog.String("serial", pend.SerialNumber), slog.String("not_after", pend.NotAfter))
	return nil
}

// Finish runs once the new certificate is AWSCURRENT: it re-imports it
// into ACM (importIntoACM), then records its expiry for the rotation
// auditor (recordExpiry). Both are idempotent, so a retried finishSecret,
// which runs Finish again, converges.
func (t *Target) Finish(ctx context.Context, req *rotation.StepRequest) error {
	if err := t.importIntoACM(ctx, req); err != nil {
		return err
	}
	return t.recordExpiry(ctx, req)
}

// importIntoACM re-imports the new certificate into ACM under
// ACM_CERTIFICATE_ARN, now that it has passed testSecret and is AWSCURRENT. Importing only
// after the test means ACM never serves a certificate that failed it or
// that a failed rotation left behind.
//
// It runs again when finishSecret is retried (after a failed import, or
// a crash), also once the token is already AWSCURRENT, so it is idempotent:
// when ACM already serves the certificate it changes nothing. Until it
// succeeds ACM keeps serving the previous certificate, which is still valid
// (it is AWSPREVIOUS), so a failed import breaks no client.
func (t *Target) importIntoACM(ctx context.Context, req *rotation.StepRequest) error {
	if t.acm == nil {
		return nil
	}
	log := logger(req.Log)
	pend, leaf, err := t.verifyPending(ctx, req)
	if err != nil {
		return err
	}
	served, err := t.acmLeaf(ctx)
	if err != nil {
		return err
	}
	if served != nil && served.Equal(leaf) {
		log.LogAttrs(ctx, slog.LevelInfo, "ACM already serves the new certificate",
			slog.String("acm_certificate_arn", t.cfg.ACMCertificateArn), slog.String("serial", pend.SerialNumber))
		return nil
	}
	_, err = t.acm.ImportCertificate(ctx, &acm.ImportCertificateInput{
		CertificateArn:   aws.String(t.cfg.ACMCertificateArn),
		Certificate:      []byte(pend.Certificate),
		PrivateKey:       []byte(pend.PrivateKey),
		CertificateChain: []byte(pend.CertificateChain),
	})
	if err != nil {
		return fmt.Errorf("re-import certificate %s into ACM %s (ACM still serves the previous one): %w", pend.SerialNumber, t.cfg.ACMCertificateArn, err)
	}
	served, err = t.acmLeaf(ctx)
	if err != nil {
		return err
	}
	if served == nil || !served.Equal(leaf) {
		got := "none"
		if served != nil {
			got = serial(served)
		}
		return fmt.Errorf("ACM certificate %s holds serial %s after the import, not the new certificate %s", t.cfg.ACMCertificateArn, got, pend.SerialNumber)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "certificate imported into ACM",
		slog.String("acm_certificate_arn", t.cfg.ACMCertificateArn), slog.String("serial", pend.SerialNumber))
	return nil
}

// acmLeaf returns the certificate ACM serves under ACM_CERTIFICATE_ARN, nil
// if it holds none.
func (t *Target) acmLeaf(ctx context.Context) (*x509.Certificate, error) {
	out, err := t.acm.GetCertificate(ctx, &acm.GetCertificateInput{CertificateArn: aws.String(t.cfg.ACMCertificateArn)})
	if err != nil {
		return nil, fmt.Errorf("read ACM certificate %s: %w", t.cfg.ACMCertificateArn, err)
	}
	certs, err := parseCerts("ACM certificate "+t.cfg.ACMCertificateArn, aws.ToString(out.Certificate))
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, nil
	}
	return certs[0], nil
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
	// The names the certificate must carry are checked against the
	// configuration again, so a pending version written by hand cannot
	// widen them beyond what the function may sign.
	cn, dns, err := names(t.cfg, pend)
	if err != nil {
		return certSecret{}, nil, fmt.Errorf("pending version: %w", err)
	}
	ca, err := t.authority(ctx, req.Secret.Token, now)
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
