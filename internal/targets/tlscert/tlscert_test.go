package tlscert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/acmpca"
	pcatypes "github.com/aws/aws-sdk-go-v2/service/acmpca/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// ---- test CAs ----

type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type caOpts struct {
	notCA     bool
	notBefore time.Time
	notAfter  time.Time
}

// newCA makes a CA signed by parent, or a self-signed root when parent is nil.
func newCA(t testing.TB, name string, parent *testCA, o caOpts) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(5 * 365 * day)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  !o.notCA,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	signer, signKey := tmpl, crypto.Signer(key)
	if parent != nil {
		signer, signKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (c *testCA) secretValue(t testing.TB, chain ...*testCA) string {
	t.Helper()
	keyPEM, err := encodeKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for _, p := range chain {
		certs = append(certs, p.cert)
	}
	b, _ := json.Marshal(caSecret{Certificate: encodeCerts(c.cert), PrivateKey: keyPEM, CertificateChain: encodeCerts(certs...)})
	return string(b)
}

// ---- unit tests ----

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{"CA_SECRET_ID": "ca", "ALLOWED_DNS_SUFFIXES": "example.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyAlgorithm != KeyECDSAP256 || c.Validity != 90*day || c.MinValidity != 45*day || c.RotationInterval != 30*day || c.AllowWildcards {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigNames(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{"CA_SECRET_ID": "ca",
		"ALLOWED_DNS_SUFFIXES": " .Svc.Example.com, example.org,svc.example.com", "ALLOWED_NAMES": "a.example.net, *.b.example.net",
		"ALLOW_WILDCARDS": "true", "COMMON_NAME": "api.example.org", "SUBJECT_ALTERNATIVE_NAMES": "a.example.net,api.example.org"}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.AllowedSuffixes, []string{"svc.example.com", "example.org"}) || !slices.Equal(c.AllowedNames, []string{"a.example.net", "*.b.example.net"}) ||
		!c.AllowWildcards || c.CommonName != "api.example.org" || !slices.Equal(c.pinned(), []string{"api.example.org", "a.example.net"}) {
		t.Errorf("parsed %+v", c)
	}
	// COMMON_NAME alone allows exactly that one name.
	c, err = ConfigFromEnv(env(map[string]string{"CA_SECRET_ID": "ca", "COMMON_NAME": "api.example.org"}))
	if err != nil || !slices.Equal(c.pinned(), []string{"api.example.org"}) {
		t.Errorf("COMMON_NAME alone: %+v, %v", c, err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "CA_SECRET_ID"},
		{map[string]string{"CA_SECRET_ID": "a", "ACM_PCA_ARN": "b"}, "both"},
		{map[string]string{"CA_SECRET_ID": "a", "KEY_ALGORITHM": "DSA"}, "KEY_ALGORITHM"},
		{map[string]string{"CA_SECRET_ID": "a", "VALIDITY_DAYS": "0"}, "VALIDITY_DAYS"},
		{map[string]string{"CA_SECRET_ID": "a", "VALIDITY_DAYS": "10", "MIN_VALIDITY_DAYS": "20"}, "MIN_VALIDITY_DAYS"},
		{map[string]string{"CA_SECRET_ID": "a", "COMMON_NAME": "bad_name"}, "COMMON_NAME"},
		{map[string]string{"CA_SECRET_ID": "a", "SUBJECT_ALTERNATIVE_NAMES": "ok.example.com,-bad.example.com"}, "-bad.example.com"},
		{map[string]string{"CA_SECRET_ID": "a", "ACM_PCA_SIGNING_ALGORITHM": "SHA256WITHRSA"}, "without ACM_PCA_ARN"},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_DNS_SUFFIXES": "example.com,bad_suffix"}, "ALLOWED_DNS_SUFFIXES"},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_DNS_SUFFIXES": "*.example.com", "ALLOW_WILDCARDS": "true"}, "ALLOWED_DNS_SUFFIXES"},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_NAMES": "a.example.com,a..example.com"}, "ALLOWED_NAMES"},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_NAMES": "*.example.com"}, "ALLOW_WILDCARDS"},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_NAMES": "a.example.com", "ALLOW_WILDCARDS": "sometimes"}, "ALLOW_WILDCARDS"},
		{map[string]string{"CA_SECRET_ID": "a", "COMMON_NAME": "*.example.com"}, "ALLOW_WILDCARDS"},
		{map[string]string{"CA_SECRET_ID": "a", "SUBJECT_ALTERNATIVE_NAMES": "a.example.com"}, "without COMMON_NAME"},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_DNS_SUFFIXES": "example.com", "COMMON_NAME": "api.example.org"}, `pins "api.example.org"`},
		{map[string]string{"CA_SECRET_ID": "a", "ALLOWED_NAMES": "api.example.com", "COMMON_NAME": "api.example.com", "SUBJECT_ALTERNATIVE_NAMES": "x.example.com"}, `pins "x.example.com"`},
	} {
		_, err := ConfigFromEnv(env(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.env, err, c.want)
		}
	}
}

func TestCheckDNSName(t *testing.T) {
	for _, ok := range []string{"a.example.com", "*.example.com", "x-1.example", "localhost"} {
		if err := checkDNSName(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a..b", "-a.b", "a-.b", "a_b.c", "a b", "*.*.a", strings.Repeat("a", 64) + ".b", "a.*.b"} {
		if err := checkDNSName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// issue makes a secret value signed by ca directly, for the verify tests.
func issue(t *testing.T, ca *testCA, alg, cn string, dns []string, validity time.Duration) certSecret {
	t.Helper()
	key, err := newKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := newCSR(key, cn, dns)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := signWith(ca.cert, ca.key, csr, time.Now(), validity)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := encodeKey(key)
	return certSecret{CommonName: cn, Certificate: encodeCerts(leaf), CertificateChain: encodeCerts(ca.cert), PrivateKey: k}
}

func TestVerify(t *testing.T) {
	root := newCA(t, "Root", nil, caOpts{})
	other := newCA(t, "Other root", nil, caOpts{})
	dns := []string{"svc.example.com", "alt.example.com"}
	ok := checks{cn: "svc.example.com", dns: dns, root: root.cert, minValidity: 30 * day, now: time.Now()}
	for _, alg := range []string{KeyECDSAP256, KeyRSA2048, KeyRSA3072} {
		s := issue(t, root, alg, "svc.example.com", dns, 90*day)
		if _, err := verify(s, ok); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
	good := issue(t, root, KeyECDSAP256, "svc.example.com", dns, 90*day)
	wrongKey := good
	wrongKey.PrivateKey = issue(t, root, KeyECDSAP256, "svc.example.com", dns, 90*day).PrivateKey
	otherRoot := ok
	otherRoot.root = other.cert
	moreNames := ok
	moreNames.dns = dns[:1]
	longer := ok
	longer.minValidity = 100 * day
	for name, c := range map[string]struct {
		s    certSecret
		c    checks
		want string
	}{
		"wrong key":      {wrongKey, ok, "does not match the private key"},
		"other root":     {good, otherRoot, "does not chain"},
		"names":          {good, moreNames, "want exactly"},
		"short validity": {good, longer, "minimum of 100 days"},
		"no certificate": {certSecret{}, ok, "0 certificates"},
	} {
		_, err := verify(c.s, c.c)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: error quotes key material", name)
		}
	}
}

// ---- integration tests against the emulator ----

type fixture struct {
	t    *testing.T
	em   *localrun.Emulator
	aws  aws.Config
	cfg  Config
	logs *testbed.LogBuffer
	root *testCA
	ca   *testCA // the intermediate that signs
	// caARN is the secret that holds ca.
	caARN string
}

// newFixture stores a two-level CA (root, intermediate) in a CA secret.
func newFixture(t *testing.T) *fixture {
	awsCfg := testbed.AWSConfig(t)
	f := &fixture{t: t, em: localrun.NewEmulator(awsCfg), aws: awsCfg, logs: &testbed.LogBuffer{}}
	f.root = newCA(t, "Test Root", nil, caOpts{})
	f.ca = newCA(t, "Test Intermediate", f.root, caOpts{notAfter: time.Now().Add(2 * 365 * day)})
	f.caARN = testbed.CreateSecret(t, f.em, f.ca.secretValue(t, f.root))
	f.setEnv(nil)
	return f
}

// setEnv configures the target the way the function is configured: from
// environment variables, on top of the fixture's CA, a 90-day validity and
// names under example.com.
func (f *fixture) setEnv(vars map[string]string) {
	f.t.Helper()
	m := map[string]string{"CA_SECRET_ID": f.cfg.CASecretID, "VALIDITY_DAYS": "90", "MIN_VALIDITY_DAYS": "30", "ALLOWED_DNS_SUFFIXES": "example.com"}
	if m["CA_SECRET_ID"] == "" {
		m["CA_SECRET_ID"] = f.caARN
	}
	for k, v := range vars {
		m[k] = v
	}
	cfg, err := ConfigFromEnv(env(m))
	if err != nil {
		f.t.Fatalf("configuration %v: %v", vars, err)
	}
	f.cfg = cfg
}

func (f *fixture) engine() *rotation.Engine {
	return f.engineWith(f.aws)
}

// engineWith makes an engine whose every AWS call (the engine's, the CA
// secret, ACM) goes through clients made from awsCfg.
func (f *fixture) engineWith(awsCfg aws.Config) *rotation.Engine {
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return rotation.New(secretsmanager.NewFromConfig(awsCfg), New(f.cfg, awsCfg), rotation.Options{TargetType: "tlscert", Function: "test", Logger: log})
}

func (f *fixture) rotate(arn string) string {
	f.t.Helper()
	res, err := f.em.Rotate(context.Background(), arn, localrun.InvokerFunc(f.engine().Handle), localrun.Options{Attempts: 1})
	if err != nil {
		f.t.Fatalf("rotate: %v", err)
	}
	return res.Token
}

func (f *fixture) invoke(e *rotation.Engine, step, arn, token string) error {
	return e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
}

func (f *fixture) at(arn, stage string) certSecret {
	f.t.Helper()
	s, err := parseSecret(testbed.ValueAt(f.t, f.em, arn, stage))
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

const firstValue = `{"commonName":"svc.example.com","subjectAlternativeNames":["alt.example.com"],"owner":"team-a"}`

func (f *fixture) assertGood(s certSecret, root *x509.Certificate) *x509.Certificate {
	f.t.Helper()
	leaf, err := verify(s, checks{cn: "svc.example.com", dns: []string{"svc.example.com", "alt.example.com"}, root: root, minValidity: f.cfg.MinValidity, now: time.Now()})
	if err != nil {
		f.t.Fatalf("stored certificate: %v", err)
	}
	return leaf
}

func TestRotateWithSecretCA(t *testing.T) {
	for _, alg := range []string{KeyECDSAP256, KeyRSA2048} {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.KeyAlgorithm = alg
			arn := testbed.CreateSecret(t, f.em, firstValue)
			f.rotate(arn)
			first := f.at(arn, "AWSCURRENT")
			leaf := f.assertGood(first, f.root.cert)
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got < 90*day || got > 90*day+clockSkew+time.Minute {
				t.Errorf("validity %s, want 90 days", got)
			}
			if (alg == KeyRSA2048) != (leaf.PublicKeyAlgorithm == x509.RSA) {
				t.Errorf("key algorithm %s for %s", leaf.PublicKeyAlgorithm, alg)
			}
			if first.SerialNumber != serial(leaf) || first.NotAfter != leaf.NotAfter.UTC().Format(time.RFC3339) || first.Issuer != f.cfg.CASecretID {
				t.Errorf("metadata fields do not describe the certificate: %+v", first)
			}
			if first.extra["owner"] == nil {
				t.Errorf("unknown field owner was not kept")
			}
			f.rotate(arn)
			second := f.at(arn, "AWSCURRENT")
			f.assertGood(second, f.root.cert)
			if second.SerialNumber == first.SerialNumber || second.PrivateKey == first.PrivateKey {
				t.Errorf("second rotation did not make a new key and certificate")
			}
			if f.at(arn, "AWSPREVIOUS").SerialNumber != first.SerialNumber {
				t.Errorf("AWSPREVIOUS is not the first certificate")
			}
		})
	}
}

// TestNamesFromConfiguration: with COMMON_NAME and SUBJECT_ALTERNATIVE_NAMES
// the certificate carries exactly the pinned names, whether the secret
// leaves its names out or repeats them (in any order, the common name among
// the SANs or not).
func TestNamesFromConfiguration(t *testing.T) {
	f := newFixture(t)
	f.setEnv(map[string]string{"ALLOWED_DNS_SUFFIXES": "", "COMMON_NAME": "api.example.com", "SUBJECT_ALTERNATIVE_NAMES": "api2.example.com"})
	for _, value := range []string{
		`{"owner":"team-a"}`,
		`{"commonName":"API.example.com"}`,
		`{"commonName":"api.example.com","subjectAlternativeNames":["api2.example.com","api.example.com"]}`,
		`{"subjectAlternativeNames":["api2.example.com"]}`,
	} {
		arn := testbed.CreateSecret(t, f.em, value)
		f.rotate(arn)
		cur := f.at(arn, "AWSCURRENT")
		leaf, _ := parseCerts("", cur.Certificate)
		if leaf[0].Subject.CommonName != "api.example.com" || !slices.Equal(leaf[0].DNSNames, []string{"api.example.com", "api2.example.com"}) {
			t.Errorf("%s: names %s %v", value, leaf[0].Subject.CommonName, leaf[0].DNSNames)
		}
		if cur.CommonName != "api.example.com" || !slices.Equal(cur.SANs, []string{"api2.example.com"}) {
			t.Errorf("%s: the secret records names %q %v", value, cur.CommonName, cur.SANs)
		}
		f.rotate(arn) // the names it recorded pass the next rotation
	}
}

// TestNamesPolicy is the unit test of the names decision.
func TestNamesPolicy(t *testing.T) {
	cfgFor := func(m map[string]string) Config {
		m["CA_SECRET_ID"] = "ca"
		c, err := ConfigFromEnv(env(m))
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		return c
	}
	suffix := cfgFor(map[string]string{"ALLOWED_DNS_SUFFIXES": "svc.example.com"})
	exact := cfgFor(map[string]string{"ALLOWED_NAMES": "a.example.net,b.example.net"})
	wild := cfgFor(map[string]string{"ALLOWED_DNS_SUFFIXES": "svc.example.com", "ALLOWED_NAMES": "*.x.example.net", "ALLOW_WILDCARDS": "true"})
	pinned := cfgFor(map[string]string{"COMMON_NAME": "api.example.org", "SUBJECT_ALTERNATIVE_NAMES": "api2.example.org"})
	for _, c := range []struct {
		name string
		cfg  Config
		cn   string
		sans []string
		want string // error substring; "" means allowed
		dns  []string
	}{
		{"suffix itself", suffix, "svc.example.com", nil, "", []string{"svc.example.com"}},
		{"under suffix", suffix, "a.b.svc.example.com", []string{"c.svc.example.com"}, "", []string{"a.b.svc.example.com", "c.svc.example.com"}},
		{"upper case", suffix, "A.Svc.Example.COM", nil, "", []string{"a.svc.example.com"}},
		{"not at a label boundary", suffix, "evilsvc.example.com", nil, `"evilsvc.example.com"`, nil},
		{"suffix inside", suffix, "svc.example.com.evil.net", nil, `"svc.example.com.evil.net"`, nil},
		{"trailing dot", suffix, "a.svc.example.com.", nil, "not a valid DNS name", nil},
		{"parent of suffix", suffix, "example.com", nil, `"example.com"`, nil},
		{"SAN outside", suffix, "a.svc.example.com", []string{"login.microsoftonline.com"}, `"subjectAlternativeNames" of the secret asks for "login.microsoftonline.com"`, nil},
		{"wildcard refused", suffix, "*.svc.example.com", nil, "ALLOW_WILDCARDS", nil},
		{"wildcard allowed under suffix", wild, "*.svc.example.com", []string{"*.a.svc.example.com"}, "", []string{"*.svc.example.com", "*.a.svc.example.com"}},
		{"wildcard above suffix", wild, "*.example.com", nil, `"*.example.com"`, nil},
		{"exact wildcard", wild, "*.x.example.net", nil, "", []string{"*.x.example.net"}},
		{"exact wildcard does not allow the name", wild, "y.x.example.net", nil, `"y.x.example.net"`, nil},
		{"exact", exact, "a.example.net", []string{"b.example.net", "a.example.net"}, "", []string{"a.example.net", "b.example.net"}},
		{"exact is not a suffix", exact, "z.a.example.net", nil, `"z.a.example.net"`, nil},
		{"no common name", exact, "", []string{"a.example.net"}, "no common name", nil},
		{"pinned from nothing", pinned, "", nil, "", []string{"api.example.org", "api2.example.org"}},
		{"pinned repeated", pinned, "api.example.org", []string{"api2.example.org"}, "", []string{"api.example.org", "api2.example.org"}},
		{"pinned other common name", pinned, "evil.example.org", nil, `"commonName" of the secret asks for "evil.example.org"`, nil},
		{"pinned extra SAN", pinned, "api.example.org", []string{"api2.example.org", "login.microsoftonline.com"}, `asks for "login.microsoftonline.com"`, nil},
		{"pinned SAN missing", pinned, "", []string{"api.example.org"}, `lacks "api2.example.org"`, nil},
	} {
		cn, dns, err := names(c.cfg, certSecret{CommonName: c.cn, SANs: c.sans})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		case c.want == "" && (cn != c.dns[0] || !slices.Equal(dns, c.dns)):
			t.Errorf("%s: names %q %v, want %v", c.name, cn, dns, c.dns)
		}
	}
}

func TestEachStepTwice(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, firstValue)
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	var afterCreate string
	for _, step := range localrun.Steps {
		for i := range 2 {
			if err := f.invoke(f.engine(), step, arn, token); err != nil {
				t.Fatalf("%s run %d: %v", step, i+1, err)
			}
			if step == rotation.StepCreate {
				v := testbed.ValueOf(t, f.em, arn, token)
				if i == 1 && v != afterCreate {
					t.Fatalf("second createSecret changed the pending value")
				}
				afterCreate = v
			}
		}
	}
	f.assertGood(f.at(arn, "AWSCURRENT"), f.root.cert)
}

// TestCrashAtEveryCall kills each step after each of its AWS calls (the
// engine's Secrets Manager calls, the CA secret, ACM: they count together),
// reruns the step and the rest of the rotation in a fresh engine, and checks
// that the rotation converges: AWSCURRENT holds a good new certificate,
// AWSPREVIOUS the old one, and ACM (when configured) serves AWSCURRENT's.
// Right after each crash AWSCURRENT holds a good certificate, and ACM
// serves the old certificate or AWSCURRENT's, nothing else.
func TestCrashAtEveryCall(t *testing.T) {
	for _, withACM := range []bool{false, true} {
		name := "secret CA"
		if withACM {
			name = "secret CA and ACM re-import"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			// One secret for every crash point: each rotation starts from
			// where the one before converged.
			arn := testbed.CreateSecret(t, f.em, firstValue)
			f.rotate(arn)
			if withACM {
				f.cfg.ACMCertificateArn = f.acmCert(arn)
			}
			for si, step := range localrun.Steps {
				for k := 0; ; k++ {
					old := f.at(arn, "AWSCURRENT")
					before, _ := f.em.Stages(ctx, arn)
					var oldID string
					for id, st := range before {
						if slices.Contains(st, "AWSCURRENT") {
							oldID = id
						}
					}
					token := localrun.NewToken()
					if _, err := f.em.OpenRotation(ctx, arn, token); err != nil {
						t.Fatal(err)
					}
					eng := f.engine()
					for _, prior := range localrun.Steps[:si] {
						if err := f.invoke(eng, prior, arn, token); err != nil {
							t.Fatalf("%s: %v", prior, err)
						}
					}
					c := &testbed.Crasher{K: k}
					crashing := c.Config(f.aws)
					err := f.invoke(f.engineWith(crashing), step, arn, token)
					if err == nil {
						if k == 0 {
							t.Fatalf("%s made no AWS call", step)
						}
						// Every crash point of the step is done: finish
						// this rotation for the next step's crash points.
						for _, rest := range localrun.Steps[si+1:] {
							if err := f.invoke(f.engine(), rest, arn, token); err != nil {
								t.Fatal(err)
							}
						}
						if err := f.em.CloseRotation(ctx, arn, token); err != nil {
							t.Fatal(err)
						}
						break
					}
					if !errors.Is(err, testbed.ErrCrash) {
						t.Fatalf("%s crashed after %d calls: unexpected error %v", step, k, err)
					}
					last := "nothing"
					if len(c.Ops) > 0 {
						last = c.Ops[len(c.Ops)-1]
					}
					cur := f.at(arn, "AWSCURRENT")
					f.assertGood(cur, f.root.cert)
					if withACM {
						if got := f.acmServes(f.cfg.ACMCertificateArn); got != old.SerialNumber && got != cur.SerialNumber {
							t.Fatalf("%s crashed after %s: ACM serves %s, neither the old %s nor AWSCURRENT's %s", step, last, got, old.SerialNumber, cur.SerialNumber)
						}
					}
					for _, rest := range localrun.Steps[si:] {
						if err := f.invoke(f.engine(), rest, arn, token); err != nil {
							t.Fatalf("%s crashed after %s (call %d); rerun of %s: %v", step, last, k, rest, err)
						}
					}
					if err := f.em.CloseRotation(ctx, arn, token); err != nil {
						t.Fatal(err)
					}
					st, _ := f.em.Stages(ctx, arn)
					if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
						t.Fatalf("%s crashed after %s: stages %v", step, last, st)
					}
					now := f.at(arn, "AWSCURRENT")
					f.assertGood(now, f.root.cert)
					if now.SerialNumber == old.SerialNumber || f.at(arn, "AWSPREVIOUS").SerialNumber != old.SerialNumber {
						t.Fatalf("%s crashed after %s: current %s, previous %s, old %s", step, last, now.SerialNumber, f.at(arn, "AWSPREVIOUS").SerialNumber, old.SerialNumber)
					}
					if withACM {
						if got := f.acmServes(f.cfg.ACMCertificateArn); got != now.SerialNumber {
							t.Fatalf("%s crashed after %s (call %d): after the rerun ACM serves %s, want AWSCURRENT's %s", step, last, k, got, now.SerialNumber)
						}
					}
					t.Logf("%s: crash after call %d (%s) recovered", step, k, last)
				}
			}
		})
	}
}

// refused runs createSecret, which must fail naming want and store nothing.
func (f *fixture) refused(value, want string) {
	f.t.Helper()
	arn := testbed.CreateSecret(f.t, f.em, value)
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		f.t.Fatal(err)
	}
	before, _ := f.em.Stages(context.Background(), arn)
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	if err == nil || !strings.Contains(err.Error(), want) {
		f.t.Fatalf("createSecret error %v, want one naming %q", err, want)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		f.t.Errorf("error quotes a key")
	}
	if after, _ := f.em.Stages(context.Background(), arn); fmt.Sprint(after) != fmt.Sprint(before) {
		f.t.Errorf("stages changed: %v -> %v", before, after)
	}
	if _, err := f.em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token)}); err == nil {
		f.t.Errorf("a pending value was stored")
	}
	if testbed.ValueAt(f.t, f.em, arn, "AWSCURRENT") != value {
		f.t.Errorf("current value changed")
	}
}

func TestBadIssuer(t *testing.T) {
	f := newFixture(t)
	store := func(v string) string { return testbed.CreateSecret(t, f.em, v) }

	f.cfg.CASecretID = "no-such-ca-" + localrun.NewToken()[:8]
	f.refused(firstValue, "no-such-ca-")

	expired := newCA(t, "Expired CA", nil, caOpts{notBefore: time.Now().Add(-400 * day), notAfter: time.Now().Add(-day)})
	f.cfg.CASecretID = store(expired.secretValue(t))
	f.refused(firstValue, "expired")

	notCA := newCA(t, "Leaf pretending", f.root, caOpts{notCA: true})
	f.cfg.CASecretID = store(notCA.secretValue(t, f.root))
	f.refused(firstValue, "is not a CA")

	mismatch := newCA(t, "Mismatch", nil, caOpts{})
	mismatch.key = newCA(t, "Other key", nil, caOpts{}).key
	f.cfg.CASecretID = store(mismatch.secretValue(t))
	f.refused(firstValue, "private key does not match")

	short := newCA(t, "Short-lived CA", nil, caOpts{notAfter: time.Now().Add(30 * day)})
	f.cfg.CASecretID = store(short.secretValue(t))
	f.refused(firstValue, "after the issuer")
}

func TestBadNames(t *testing.T) {
	f := newFixture(t)
	f.refused(`{"commonName":"bad_name.example.com"}`, "bad_name.example.com")
	f.refused(`{"commonName":"ok.example.com","subjectAlternativeNames":["ok2.example.com","x..example.com"]}`, "x..example.com")
	f.refused(`{"subjectAlternativeNames":["ok.example.com"]}`, "no common name")
}

func TestExpiryWarning(t *testing.T) {
	f := newFixture(t)
	f.cfg.Validity, f.cfg.MinValidity, f.cfg.RotationInterval = 10*day, 5*day, 30*day
	arn := testbed.CreateSecret(t, f.em, firstValue)
	f.rotate(arn)
	if strings.Contains(f.logs.String(), "expires before the next scheduled rotation") {
		t.Fatal("warned about a certificate that did not exist yet")
	}
	f.rotate(arn)
	if !strings.Contains(f.logs.String(), `"level":"WARN","msg":"current certificate expires before the next scheduled rotation"`) {
		t.Errorf("no expiry warning in %s", f.logs.String())
	}
	f.cfg.RotationInterval = 7 * day
	f.rotate(arn)
	var infoLine string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, `"level":"INFO","msg":"current certificate",`) {
			infoLine = l
		}
	}
	if !strings.Contains(infoLine, `"not_after":"`) || !strings.Contains(infoLine, `"days_left":`) {
		t.Errorf("no not-after line for the current certificate: %q", infoLine)
	}
}

// acmCert imports the current certificate of arn into a new ACM
// certificate, deleted when the test ends, and returns its ARN.
func (f *fixture) acmCert(arn string) string {
	f.t.Helper()
	cur := f.at(arn, "AWSCURRENT")
	api := acm.NewFromConfig(f.aws)
	imp, err := api.ImportCertificate(context.Background(), &acm.ImportCertificateInput{
		Certificate: []byte(cur.Certificate), PrivateKey: []byte(cur.PrivateKey), CertificateChain: []byte(cur.CertificateChain),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	certARN := aws.ToString(imp.CertificateArn)
	f.t.Cleanup(func() {
		_, _ = api.DeleteCertificate(context.Background(), &acm.DeleteCertificateInput{CertificateArn: aws.String(certARN)})
	})
	return certARN
}

// acmServes returns the serial of the certificate ACM serves under certARN.
func (f *fixture) acmServes(certARN string) string {
	f.t.Helper()
	out, err := acm.NewFromConfig(f.aws).GetCertificate(context.Background(), &acm.GetCertificateInput{CertificateArn: aws.String(certARN)})
	if err != nil {
		f.t.Fatal(err)
	}
	got, err := parseCerts("", aws.ToString(out.Certificate))
	if err != nil || len(got) != 1 {
		f.t.Fatalf("ACM certificate %s: %d certificates, %v", certARN, len(got), err)
	}
	return serial(got[0])
}

// TestACMReimport: ACM receives the new certificate in finishSecret, after
// testSecret passed, and not before: while the rotation is open ACM keeps
// serving the current certificate.
func TestACMReimport(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, firstValue)
	f.rotate(arn)
	first := f.at(arn, "AWSCURRENT")
	certARN := f.acmCert(arn)
	f.cfg.ACMCertificateArn = certARN

	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	for _, step := range localrun.Steps[:3] {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatal(err)
		}
		if got := f.acmServes(certARN); got != first.SerialNumber {
			t.Fatalf("after %s ACM serves %s, want the current certificate %s until finishSecret", step, got, first.SerialNumber)
		}
	}
	if err := f.invoke(f.engine(), rotation.StepFinish, arn, token); err != nil {
		t.Fatal(err)
	}
	second := f.at(arn, "AWSCURRENT")
	if second.SerialNumber == first.SerialNumber {
		t.Fatal("the rotation did not make a new certificate")
	}
	if got := f.acmServes(certARN); got != second.SerialNumber {
		t.Fatalf("after finishSecret ACM serves %s, want the new certificate %s", got, second.SerialNumber)
	}
	if !strings.Contains(f.logs.String(), `"msg":"certificate imported into ACM"`) {
		t.Errorf("no import log line")
	}
}

// TestACMUntouchedWhenTestFails is finding 13 of issue 9: a certificate
// that fails testSecret must never reach ACM. Here testSecret fails (the
// function now demands more validity than the certificate has); ACM must
// still serve the current certificate, and the rotation, retried with a
// configuration that passes, then imports the new one.
func TestACMUntouchedWhenTestFails(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, firstValue)
	f.rotate(arn)
	first := f.at(arn, "AWSCURRENT")
	certARN := f.acmCert(arn)
	f.cfg.ACMCertificateArn = certARN

	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	for _, step := range localrun.Steps[:2] {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatal(err)
		}
	}
	strict := f.cfg
	strict.MinValidity = 100 * day
	lenient := f.cfg
	f.cfg = strict
	err := f.invoke(f.engine(), rotation.StepTest, arn, token)
	f.cfg = lenient
	if err == nil || !strings.Contains(err.Error(), "minimum of 100 days") {
		t.Fatalf("testSecret: %v, want the validity refusal", err)
	}
	if got := f.acmServes(certARN); got != first.SerialNumber {
		t.Fatalf("after a failed testSecret ACM serves %s, want the current certificate %s", got, first.SerialNumber)
	}
	if f.at(arn, "AWSCURRENT").SerialNumber != first.SerialNumber {
		t.Fatal("AWSCURRENT moved")
	}
	for _, step := range localrun.Steps[2:] {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatalf("retry of %s: %v", step, err)
		}
	}
	if got, want := f.acmServes(certARN), f.at(arn, "AWSCURRENT").SerialNumber; got != want {
		t.Fatalf("after the retried rotation ACM serves %s, want %s", got, want)
	}
}

// TestACMWrongArnFailsTest: an ACM certificate that cannot be read fails
// testSecret, before AWSCURRENT moves.
func TestACMWrongArnFailsTest(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, firstValue)
	f.rotate(arn)
	first := f.at(arn, "AWSCURRENT")
	f.cfg.ACMCertificateArn = "arn:aws:acm:" + f.aws.Region + ":000000000000:certificate/00000000-0000-0000-0000-" + localrun.NewToken()[:12]
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	for _, step := range localrun.Steps[:2] {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.invoke(f.engine(), rotation.StepTest, arn, token); err == nil || !strings.Contains(err.Error(), f.cfg.ACMCertificateArn) {
		t.Fatalf("testSecret with a missing ACM certificate: %v", err)
	}
	if f.at(arn, "AWSCURRENT").SerialNumber != first.SerialNumber {
		t.Fatal("AWSCURRENT moved")
	}
}

// newPrivateCA creates and activates a root ACM Private CA the way AWS
// documents it: sign the CA's own CSR with the RootCACertificate template,
// then import the result.
func newPrivateCA(t *testing.T, awsCfg aws.Config) (arn string, root *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	api := acmpca.NewFromConfig(awsCfg)
	out, err := api.CreateCertificateAuthority(ctx, &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType: pcatypes.CertificateAuthorityTypeRoot,
		CertificateAuthorityConfiguration: &pcatypes.CertificateAuthorityConfiguration{
			KeyAlgorithm: pcatypes.KeyAlgorithmRsa2048, SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
			Subject: &pcatypes.ASN1Subject{CommonName: aws.String("Test Private Root")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn = aws.ToString(out.CertificateAuthorityArn)
	csr, err := api.GetCertificateAuthorityCsr(ctx, &acmpca.GetCertificateAuthorityCsrInput{CertificateAuthorityArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := api.IssueCertificate(ctx, &acmpca.IssueCertificateInput{
		CertificateAuthorityArn: aws.String(arn), Csr: []byte(aws.ToString(csr.Csr)),
		SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
		TemplateArn:      aws.String("arn:aws:acm-pca:::template/RootCACertificate/V1"),
		Validity:         &pcatypes.Validity{Type: pcatypes.ValidityPeriodTypeYears, Value: aws.Int64(10)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := api.GetCertificate(ctx, &acmpca.GetCertificateInput{CertificateAuthorityArn: aws.String(arn), CertificateArn: iss.CertificateArn})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.ImportCertificateAuthorityCertificate(ctx, &acmpca.ImportCertificateAuthorityCertificateInput{
		CertificateAuthorityArn: aws.String(arn), Certificate: []byte(aws.ToString(got.Certificate)),
	}); err != nil {
		t.Fatal(err)
	}
	certs, err := parseCerts("", aws.ToString(got.Certificate))
	if err != nil || len(certs) != 1 {
		t.Fatalf("root certificate: %v", err)
	}
	return arn, certs[0]
}

func TestRotateWithPrivateCA(t *testing.T) {
	f := newFixture(t)
	pcaARN, root := newPrivateCA(t, f.aws)
	f.cfg.CASecretID, f.cfg.PCAArn = "", pcaARN
	f.cfg.Validity, f.cfg.MinValidity = 30*day, 20*day
	arn := testbed.CreateSecret(t, f.em, firstValue)
	f.rotate(arn)
	first := f.at(arn, "AWSCURRENT")
	f.assertGood(first, root)
	if first.Issuer != pcaARN {
		t.Errorf("issuer %s, want %s", first.Issuer, pcaARN)
	}
	f.rotate(arn)
	if f.at(arn, "AWSCURRENT").SerialNumber == first.SerialNumber {
		t.Errorf("second rotation kept the certificate")
	}
	// A CA that is not ACTIVE is refused.
	api := acmpca.NewFromConfig(f.aws)
	pending, err := api.CreateCertificateAuthority(context.Background(), &acmpca.CreateCertificateAuthorityInput{
		CertificateAuthorityType: pcatypes.CertificateAuthorityTypeRoot,
		CertificateAuthorityConfiguration: &pcatypes.CertificateAuthorityConfiguration{
			KeyAlgorithm: pcatypes.KeyAlgorithmRsa2048, SigningAlgorithm: pcatypes.SigningAlgorithmSha256withrsa,
			Subject: &pcatypes.ASN1Subject{CommonName: aws.String("Not yet")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.PCAArn = aws.ToString(pending.CertificateAuthorityArn)
	f.refused(firstValue, "not ACTIVE")
	// A validity beyond the CA's own.
	f.cfg.PCAArn = pcaARN
	f.cfg.Validity = 20 * 365 * day
	f.refused(firstValue, "after the issuer")
}

func TestLogsCarryNoPrivateKey(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, firstValue)
	f.rotate(arn)
	k1 := f.at(arn, "AWSCURRENT").PrivateKey
	f.rotate(arn)
	k2 := f.at(arn, "AWSCURRENT").PrivateKey
	logs := f.logs.String()
	if !strings.Contains(logs, `"msg":"certificate issued"`) {
		t.Fatalf("no target log lines captured")
	}
	caKey, _ := encodeKey(f.ca.key)
	for _, k := range []string{k1, k2, caKey} {
		body := strings.Join(strings.Split(k, "\n")[1:3], "")
		if strings.Contains(logs, body) || strings.Contains(logs, "PRIVATE KEY") {
			t.Errorf("log output contains private key material")
		}
	}
}

// TestEndToEndUnderRIE builds functions/tlscert, runs it under the runtime
// interface emulator and rotates a secret twice through the local runner.
func TestEndToEndUnderRIE(t *testing.T) {
	f := newFixture(t)
	rieBin := testbed.RIEBinary(t)
	bootstrap := testbed.BuildFunction(t, "tlscert")
	arn := testbed.CreateSecret(t, f.em, firstValue)
	var out testbed.LogBuffer
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary: rieBin, Bootstrap: bootstrap, Output: &out,
		Env: []string{"AWS_LAMBDA_FUNCTION_NAME=tlscert", "CA_SECRET_ID=" + f.cfg.CASecretID, "VALIDITY_DAYS=60", "KEY_ALGORITHM=RSA_2048", "ALLOWED_DNS_SUFFIXES=svc.example.com,alt.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	var keys []string
	for i := range 2 {
		start := time.Now()
		res, err := f.em.Rotate(context.Background(), arn, rie, localrun.Options{Attempts: 1})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		t.Logf("rotation %d under RIE: %s", i+1, time.Since(start))
		if !slices.Contains(res.StagesAfter[res.Token], "AWSCURRENT") {
			t.Fatalf("rotation %d: stages %v", i+1, res.StagesAfter)
		}
		cur := f.at(arn, "AWSCURRENT")
		leaf := f.assertGood(cur, f.root.cert)
		if leaf.PublicKeyAlgorithm != x509.RSA || leaf.NotAfter.Sub(leaf.NotBefore) < 60*day {
			t.Errorf("function settings not applied: %s, %s", leaf.PublicKeyAlgorithm, leaf.NotAfter.Sub(leaf.NotBefore))
		}
		keys = append(keys, cur.PrivateKey)
	}
	logs := out.String()
	for _, k := range keys {
		if strings.Contains(logs, strings.Split(k, "\n")[1]) {
			t.Errorf("function output contains a private key")
		}
	}
	if !strings.Contains(logs, `"outcome":"success"`) || !strings.Contains(logs, `"msg":"current certificate"`) {
		t.Errorf("function output lacks the step or expiry lines:\n%s", logs)
	}
}

// TestVerifyIssuerClockAhead: a notBefore a little in the future (the
// issuer's clock) passes; one far in the future does not.
func TestVerifyIssuerClockAhead(t *testing.T) {
	root := newCA(t, "Root", nil, caOpts{})
	dns := []string{"svc.example.com"}
	now := time.Now()
	for _, c := range []struct {
		ahead time.Duration
		ok    bool
	}{{2 * time.Second, true}, {clockSkew + time.Minute, false}} {
		key, _ := newKey(KeyECDSAP256)
		csr, _ := newCSR(key, dns[0], dns)
		leaf, err := signWith(root.cert, root.key, csr, now.Add(clockSkew+c.ahead), 90*day)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := encodeKey(key)
		s := certSecret{Certificate: encodeCerts(leaf), PrivateKey: k}
		_, err = verify(s, checks{cn: dns[0], dns: dns, root: root.cert, minValidity: day, now: now})
		if (err == nil) != c.ok {
			t.Errorf("notBefore %s ahead: error %v, want ok=%v", c.ahead, err, c.ok)
		}
	}
}
