package tlscert

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The hostile-input tests of issue 9, finding 3: whoever may write a
// certificate secret tries to make the function's CA sign names that the
// function's configuration does not allow. Each test configures the
// function as a deployer would (environment variables) and plays the
// secret's writer.

// hostileConfig configures f's target from environment variables, with f's
// CA as the issuer.
func hostileConfig(f *fixture, vars map[string]string) {
	f.t.Helper()
	m := map[string]string{"CA_SECRET_ID": f.cfg.CASecretID, "VALIDITY_DAYS": "90", "MIN_VALIDITY_DAYS": "30"}
	for k, v := range vars {
		m[k] = v
	}
	cfg, err := ConfigFromEnv(env(m))
	if err != nil {
		f.t.Fatalf("configuration %v: %v", vars, err)
	}
	f.cfg = cfg
}

// hostileRefused stores value as a secret's current version and runs
// createSecret, which must fail with an error that names the secret, the
// field and the refused name, sign nothing and store nothing.
func hostileRefused(f *fixture, arn, field, name string) {
	f.t.Helper()
	ctx := context.Background()
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(ctx, arn, token); err != nil {
		f.t.Fatal(err)
	}
	before, _ := f.em.Stages(ctx, arn)
	current := testbed.ValueAt(f.t, f.em, arn, "AWSCURRENT")
	logsBefore := len(f.logs.String())
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	if err == nil {
		f.t.Fatalf("createSecret signed %s %q asked for by the secret; want a refusal", field, name)
	}
	for _, want := range []string{arn, fmt.Sprintf("%q", field), fmt.Sprintf("%q", name)} {
		if !strings.Contains(err.Error(), want) {
			f.t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(f.logs.String()[logsBefore:], `"msg":"certificate issued"`) {
		f.t.Errorf("a certificate was issued")
	}
	if after, _ := f.em.Stages(ctx, arn); fmt.Sprint(after) != fmt.Sprint(before) {
		f.t.Errorf("stages changed: %v -> %v", before, after)
	}
	if _, err := f.em.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token)}); err == nil {
		f.t.Errorf("a pending value was stored")
	}
	if testbed.ValueAt(f.t, f.em, arn, "AWSCURRENT") != current {
		f.t.Errorf("the current value changed")
	}
}

// TestHostileWildcardCommonName: a wildcard for the whole allowed domain.
func TestHostileWildcardCommonName(t *testing.T) {
	f := newFixture(t)
	hostileConfig(f, map[string]string{"ALLOWED_DNS_SUFFIXES": "bank.example"})
	arn := testbed.CreateSecret(t, f.em, `{"commonName":"*.bank.example"}`)
	hostileRefused(f, arn, "commonName", "*.bank.example")
}

// TestHostileSANOutsideAllowedNames: an allowed common name with a SAN of
// somebody else's domain, and a name that only ends like the allowed suffix.
func TestHostileSANOutsideAllowedNames(t *testing.T) {
	f := newFixture(t)
	hostileConfig(f, map[string]string{"ALLOWED_DNS_SUFFIXES": "bank.example"})
	arn := testbed.CreateSecret(t, f.em, `{"commonName":"www.bank.example","subjectAlternativeNames":["login.microsoftonline.com"]}`)
	hostileRefused(f, arn, "subjectAlternativeNames", "login.microsoftonline.com")
	arn = testbed.CreateSecret(t, f.em, `{"commonName":"www.bank.example","subjectAlternativeNames":["evilbank.example"]}`)
	hostileRefused(f, arn, "subjectAlternativeNames", "evilbank.example")
}

// TestHostilePinnedCommonNameSecretAddsSAN: COMMON_NAME alone pins the
// certificate to that one name; the secret may not add a SAN to it.
func TestHostilePinnedCommonNameSecretAddsSAN(t *testing.T) {
	f := newFixture(t)
	hostileConfig(f, map[string]string{"COMMON_NAME": "www.bank.example"})
	arn := testbed.CreateSecret(t, f.em, `{"commonName":"www.bank.example","subjectAlternativeNames":["login.microsoftonline.com"]}`)
	hostileRefused(f, arn, "subjectAlternativeNames", "login.microsoftonline.com")
}

// TestHostilePinnedCommonNameSecretOtherName: a secret that asks for another
// common name than the pinned one is refused, not silently given the pinned
// one (which would hide that the secret was tampered with).
func TestHostilePinnedCommonNameSecretOtherName(t *testing.T) {
	f := newFixture(t)
	hostileConfig(f, map[string]string{"COMMON_NAME": "www.bank.example"})
	arn := testbed.CreateSecret(t, f.em, `{"commonName":"login.microsoftonline.com"}`)
	hostileRefused(f, arn, "commonName", "login.microsoftonline.com")
}

// TestHostileCurrentVersionRewritten: the writer of an existing secret puts
// a new AWSCURRENT version that asks for a foreign name; the next rotation
// is refused and the stored versions stay as they are.
func TestHostileCurrentVersionRewritten(t *testing.T) {
	f := newFixture(t)
	hostileConfig(f, map[string]string{"ALLOWED_DNS_SUFFIXES": "bank.example"})
	arn := testbed.CreateSecret(t, f.em, `{"commonName":"www.bank.example"}`)
	f.rotate(arn)
	cur := f.at(arn, "AWSCURRENT")
	cur.SANs = []string{"login.microsoftonline.com"}
	v, err := cur.encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(v)}); err != nil {
		t.Fatal(err)
	}
	hostileRefused(f, arn, "subjectAlternativeNames", "login.microsoftonline.com")
}

// TestHostileEmptyConfigurationSignsNothing: a function that holds a CA and
// is told no allowed name refuses to start rather than sign what secrets ask.
func TestHostileEmptyConfigurationSignsNothing(t *testing.T) {
	_, err := ConfigFromEnv(env(map[string]string{"CA_SECRET_ID": "arn:aws:secretsmanager:us-east-1:000000000000:secret:ca-AbCdEf"}))
	if err == nil || !strings.Contains(err.Error(), "ALLOWED_DNS_SUFFIXES") {
		t.Fatalf("configuration without allowed names: %v, want a refusal naming ALLOWED_DNS_SUFFIXES", err)
	}
}
