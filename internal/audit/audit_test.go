package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/generic"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/iamkey"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/tlscert"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// bed makes the secrets of one audit test under a prefix of their own.
type bed struct {
	t      *testing.T
	em     *localrun.Emulator
	prefix string
}

func newBed(t *testing.T) *bed {
	return &bed{t: t, em: testbed.Emulator(t), prefix: "audit-" + localrun.NewToken()[:8] + "/"}
}

func (b *bed) secret(name, value string, tags map[string]string) string {
	b.t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(b.prefix + name), SecretString: aws.String(value)}
	for k, v := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := b.em.SM.CreateSecret(context.Background(), in)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		b.em.SM.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return aws.ToString(out.ARN)
}

// rotate runs a whole rotation of arn with target through the real engine,
// opening it with RotateSecret and the given rules.
func (b *bed) rotate(arn string, target rotation.Target, days int64) {
	b.t.Helper()
	ctx := context.Background()
	fnARN := b.standIn()
	token := localrun.NewToken()
	if _, err := b.em.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String(arn), ClientRequestToken: aws.String(token), RotationLambdaARN: aws.String(fnARN),
		RotationRules: &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(days)}, RotateImmediately: aws.Bool(true),
	}); err != nil {
		b.t.Fatal(err)
	}
	eng := rotation.New(b.em.SM, target, rotation.Options{TargetType: "audit-test", Logger: slog.New(slog.DiscardHandler)})
	res := localrun.Result{ARN: arn, Token: token}
	if err := b.em.Drive(ctx, &res, localrun.InvokerFunc(eng.Handle), localrun.Options{Attempts: 1}); err != nil {
		b.t.Fatalf("rotation of %s: %v", arn, err)
	}
}

// standIn returns the stand-in function that a local rotation registers.
func (b *bed) standIn() string {
	b.t.Helper()
	arn := b.secret("standin-"+localrun.NewToken()[:4], "x", nil)
	token := localrun.NewToken()
	if _, err := b.em.OpenRotation(context.Background(), arn, token); err != nil {
		b.t.Fatal(err)
	}
	d, err := b.em.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		b.t.Fatal(err)
	}
	// Not the auditor's business: delete it now.
	b.em.SM.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(arn), ForceDeleteWithoutRecovery: aws.Bool(true)})
	return aws.ToString(d.RotationLambdaARN)
}

func genericTarget(t *testing.T) rotation.Target {
	cfg, err := generic.ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return generic.New(cfg)
}

// caSecret is a CA held in a secret, the issuer of the tlscert function.
func caSecret(t *testing.T, b *bed) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "audit test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(map[string]string{
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"privateKey":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})),
	})
	return b.secret("ca", string(v), nil)
}

// logLine is the part of the auditor's log lines the test reads.
type logLine struct {
	Msg        string `json:"msg"`
	Finding    string `json:"finding"`
	SecretName string `json:"secret_name"`
	SecretARN  string `json:"secret_arn"`
	Message    string `json:"message"`
	AWS        struct {
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct{ Name, Unit string }
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	AuditFinding        *int           `json:"AuditFinding"`
	AuditFindings       *int           `json:"AuditFindings"`
	AuditSecretsAudited *int           `json:"AuditSecretsAudited"`
	Findings            map[string]int `json:"findings"`
}

func lines(t *testing.T, logs string) []logLine {
	var out []logLine
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		out = append(out, ll)
	}
	return out
}

// TestAuditorFindsEachState puts one secret in each state the auditor
// reports, made by the real functions' targets where a function makes the
// state (the tlscert and iamkey tags), runs the auditor against the
// emulator three days later (its clock moved), and reads its log lines and
// metrics.
func TestAuditorFindsEachState(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	cfg := testbed.AWSConfig(t)

	b.rotate(b.secret("healthy", "value-healthy-01", nil), genericTarget(t), 30)
	overdue := b.secret("overdue", "value-overdue-01", nil)
	b.rotate(overdue, genericTarget(t), 1)
	stuck := b.secret("stuck", "value-stuck-01", nil)
	if _, err := b.em.OpenRotation(ctx, stuck, localrun.NewToken()); err != nil { // the function never ran
		t.Fatal(err)
	}
	b.secret("disabled", "value-disabled-01", map[string]string{audit.TagRequired: "true"})
	b.secret("ignored", "value-ignored-01", nil) // neither rotated nor required: out of scope

	cert := b.secret("cert", `{"commonName":"audit.example.internal"}`, nil)
	b.rotate(cert, tlscert.New(tlscert.Config{CASecretID: caSecret(t, b), KeyAlgorithm: tlscert.KeyECDSAP256, AllowedSuffixes: []string{"example.internal"},
		Validity: 20 * 24 * time.Hour, MinValidity: time.Hour, RotationInterval: 30 * 24 * time.Hour}, cfg), 30)

	im := iam.NewFromConfig(cfg)
	user := "audit-" + localrun.NewToken()[:8]
	if _, err := im.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user), Path: aws.String(iamkey.DefaultUserPath)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := im.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(user)}); err == nil {
			for _, k := range out.AccessKeyMetadata {
				im.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: k.AccessKeyId})
			}
		}
		im.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(user)})
	})
	key := b.secret("key", `{"userName":"`+user+`"}`, nil)
	// The deployer binds the user to its secret (docs/iamkey.md).
	if _, err := im.TagUser(ctx, &iam.TagUserInput{UserName: aws.String(user),
		Tags: []iamtypes.Tag{{Key: aws.String(iamkey.BindingTag), Value: aws.String(key)}}}); err != nil {
		t.Fatal(err)
	}
	b.rotate(key, iamkey.New(iamkey.Config{TestTimeout: 10 * time.Second, UserPath: iamkey.DefaultUserPath}, cfg), 30)

	var logs testbed.LogBuffer
	a := audit.New(b.em.SM, audit.Config{
		NamePrefix: b.prefix, OverdueSlack: 12 * time.Hour, StuckAfter: 6 * time.Hour,
		CertExpiry: 30 * 24 * time.Hour, AccessKeyMaxAge: 24 * time.Hour, Namespace: "SecretsRotation", Region: cfg.Region,
		Now: func() time.Time { return time.Now().Add(72 * time.Hour) },
	}, slog.New(slog.NewJSONHandler(&logs, nil)))
	rep, err := a.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	want := map[string][]string{ // secret name -> the kinds found on it
		"overdue":  {audit.Overdue},
		"stuck":    {audit.Stuck},
		"disabled": {audit.Disabled},
		"cert":     {audit.Expiring},
		"key":      {audit.KeyAge},
	}
	got := map[string][]string{}
	for _, f := range rep.Findings {
		got[strings.TrimPrefix(f.Name, b.prefix)] = append(got[strings.TrimPrefix(f.Name, b.prefix)], f.Kind)
	}
	for name, kinds := range want {
		if !slices.Equal(got[name], kinds) {
			t.Errorf("%s: findings %v, want %v", name, got[name], kinds)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: unexpected findings %v", name, got[name])
		}
	}
	// healthy, overdue, stuck, disabled, cert, key (and the CA is not in scope).
	if rep.InScope != 6 {
		t.Errorf("%d secrets in scope, want 6", rep.InScope)
	}

	ls := lines(t, logs.String())
	var findings, summaries int
	for _, l := range ls {
		switch l.Msg {
		case "audit finding":
			findings++
			m := l.AWS.CloudWatchMetrics
			if len(m) != 1 || m[0].Namespace != "SecretsRotation" || len(m[0].Dimensions) != 1 || !slices.Equal(m[0].Dimensions[0], []string{"finding"}) ||
				len(m[0].Metrics) != 1 || m[0].Metrics[0].Name != audit.MetricFinding || l.AuditFinding == nil || *l.AuditFinding != 1 {
				t.Errorf("finding line of %s is not an EMF record of AuditFinding by finding: %+v", l.SecretName, l)
			}
			if l.Finding == "" || l.SecretARN == "" || l.Message == "" {
				t.Errorf("finding line lacks a field: %+v", l)
			}
		case "audit done":
			summaries++
			if l.AuditFindings == nil || *l.AuditFindings != len(rep.Findings) || l.AuditSecretsAudited == nil || *l.AuditSecretsAudited != 6 {
				t.Errorf("summary line: %+v", l)
			}
			if l.Findings[audit.Stuck] != 1 || l.Findings[audit.Overdue] != 1 || l.Findings[audit.Unreadable] != 0 {
				t.Errorf("summary counts: %v", l.Findings)
			}
		}
	}
	if findings != len(rep.Findings) || summaries != 1 {
		t.Errorf("%d finding lines for %d findings, %d summary lines", findings, len(rep.Findings), summaries)
	}
	for _, v := range []string{"value-healthy-01", "value-overdue-01", "value-stuck-01", "value-disabled-01"} {
		if strings.Contains(logs.String(), v) {
			t.Error("a secret value appears in the auditor's log")
		}
	}
}
