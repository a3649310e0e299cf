package samtemplate

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/secrets-rotation/secrets-rotation/internal/lambdafn"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/password"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/iamkey"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/tlscert"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The tests of this file check that the template hands the functions the
// settings their trust boundary rests on (docs/security.md): the names a CA
// may sign, the IAM users iamkey may manage, who may invoke a function, and
// the metrics namespace that the failure alarms read.

// sections is template.yaml decoded with the short-form intrinsics turned
// into their long form, every top-level section kept.
func sections(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	top, _ := decode(&doc).(map[string]any)
	out := map[string]map[string]any{}
	for k, v := range top {
		if m, ok := v.(map[string]any); ok {
			out[k] = m
		}
	}
	return out
}

func envOf(t *testing.T, tpl *template, id string) map[string]any {
	t.Helper()
	vars, ok := mapAt(props(tpl.resources[id]), "Environment", "Variables")
	if !ok {
		t.Fatalf("%s has no environment", id)
	}
	return vars
}

func isRef(v any, name string) bool {
	m, _ := v.(map[string]any)
	return len(m) == 1 && m["Ref"] == name
}

// TestInvokePermissionsNarrowToSecretPrefix: with RotatedSecretsNamePrefix
// set, Secrets Manager may invoke a function only for secrets whose name
// starts with it; without it the permission has no SourceArn.
func TestInvokePermissionsNarrowToSecretPrefix(t *testing.T) {
	tpl := loadTemplate(t)
	want := "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${RotatedSecretsNamePrefix}*"
	n := 0
	for id, r := range tpl.resources {
		p := props(r)
		if r["Type"] != "AWS::Lambda::Permission" || p["Principal"] != "secretsmanager.amazonaws.com" {
			continue
		}
		n++
		f, _ := p["SourceArn"].(map[string]any)
		args, _ := f["Fn::If"].([]any)
		if len(args) != 3 || args[0] != "HasRotatedSecretsNamePrefix" || !isRef(args[2], "AWS::NoValue") {
			t.Errorf("%s: SourceArn %v, want !If [HasRotatedSecretsNamePrefix, <secret ARN prefix>, !Ref AWS::NoValue]", id, p["SourceArn"])
			continue
		}
		if sub, _ := args[1].(map[string]any); sub["Fn::Sub"] != want {
			t.Errorf("%s: SourceArn pattern %v, want %s", id, args[1], want)
		}
	}
	if want := len(tpl.rotationFunctions(t)); n != want {
		t.Errorf("%d invoke permissions for %d rotation functions", n, want)
	}
}

// TestAlarmsFollowMetricsNamespace: the functions write their metrics to
// the namespace MetricsNamespace names, and every alarm reads that one, so
// renaming it cannot disconnect the alarms.
func TestAlarmsFollowMetricsNamespace(t *testing.T) {
	tpl := loadTemplate(t)
	s := sections(t)
	param, _ := s["Parameters"]["MetricsNamespace"].(map[string]any)
	if param["Default"] != lambdafn.DefaultMetricsNamespace {
		t.Errorf("MetricsNamespace defaults to %v, the functions to %s", param["Default"], lambdafn.DefaultMetricsNamespace)
	}
	for id := range tpl.functions() {
		if v := envOf(t, tpl, id)["METRICS_NAMESPACE"]; !isRef(v, "MetricsNamespace") {
			t.Errorf("%s: METRICS_NAMESPACE is %v, want !Ref MetricsNamespace", id, v)
		}
	}
	alarms := 0
	for id, r := range tpl.resources {
		if r["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		alarms++
		p := props(r)
		b, _ := json.Marshal(p)
		ns, _ := p["Namespace"].(string)
		switch {
		case strings.Contains(string(b), "SecretsRotation"):
			t.Errorf("%s names the namespace literally: %s", id, b)
		case strings.HasPrefix(ns, "AWS/"):
			// A metric of an AWS service (the auditor's own Lambda errors).
		case strings.Contains(string(b), `SCHEMA(\"${MetricsNamespace}\"`), isRef(p["Namespace"], "MetricsNamespace"):
		default:
			t.Errorf("%s does not read the namespace MetricsNamespace names: %s", id, b)
		}
	}
	if alarms < len(tpl.functions()) {
		t.Errorf("%d alarms for %d functions", alarms, len(tpl.functions()))
	}
	if _, ok := s["Rules"]["MetricsNamespaceFeedsTheAlarms"]; !ok {
		t.Error(`no rule refuses MetricsNamespace "off", which would leave the alarms without metrics`)
	}
}

// TestPasswordLengthMatchesTheFunctions: the template's PasswordLength
// bounds are the ones the functions themselves enforce.
func TestPasswordLengthMatchesTheFunctions(t *testing.T) {
	p, _ := sections(t)["Parameters"]["PasswordLength"].(map[string]any)
	if fmt.Sprint(p["MinValue"]) != strconv.Itoa(password.MinLength) || fmt.Sprint(p["MaxValue"]) != strconv.Itoa(password.MaxLength) {
		t.Errorf("PasswordLength is %v..%v, the functions accept %d..%d", p["MinValue"], p["MaxValue"], password.MinLength, password.MaxLength)
	}
}

// TestIamKeyUsersFromConfiguration: iamkey gets IAM_USER_PATH and its
// opt-in from the template, a rule refuses "/" without the opt-in, and the
// example user is bound to the example secret by the tag the function
// requires.
func TestIamKeyUsersFromConfiguration(t *testing.T) {
	tpl := loadTemplate(t)
	s := sections(t)
	env := envOf(t, tpl, "IamKeyFunction")
	if !isRef(env["IAM_USER_PATH"], "IamUserPath") || !isRef(env["IAM_ALLOW_ALL_USERS"], "IamAllowAllUsers") {
		t.Errorf("iamkey environment %v lacks IAM_USER_PATH / IAM_ALLOW_ALL_USERS from the parameters", env)
	}
	if p, _ := s["Parameters"]["IamUserPath"].(map[string]any); p["Default"] != iamkey.DefaultUserPath {
		t.Errorf("IamUserPath defaults to %v, the function to %s", p["Default"], iamkey.DefaultUserPath)
	}
	if p, _ := s["Parameters"]["IamAllowAllUsers"].(map[string]any); p["Default"] != "false" {
		t.Errorf("IamAllowAllUsers defaults to %v", p["Default"])
	}
	rule, _ := s["Rules"]["IamRootPathNeedsOptIn"].(map[string]any)
	b, _ := json.Marshal(rule)
	if !strings.Contains(string(b), `{"Fn::Equals":[{"Ref":"IamUserPath"},"/"]}`) || !strings.Contains(string(b), `{"Fn::Equals":[{"Ref":"IamAllowAllUsers"},"true"]}`) {
		t.Errorf("rule IamRootPathNeedsOptIn does not refuse IamUserPath / without IamAllowAllUsers: %s", b)
	}
	user := props(tpl.resources["IamKeyExampleUser"])
	secret := props(tpl.resources["IamKeyExampleSecret"])
	tags, _ := user["Tags"].([]any)
	bound := false
	for _, tg := range tags {
		m, _ := tg.(map[string]any)
		if m["Key"] == iamkey.BindingTag && fmt.Sprint(m["Value"]) == fmt.Sprint(secret["Name"]) {
			bound = true
		}
	}
	if !bound {
		t.Errorf("IamKeyExampleUser is not tagged %s with the example secret's name %v: %v", iamkey.BindingTag, secret["Name"], tags)
	}
}

// eval evaluates the intrinsic functions the tlscert example uses, with
// the parameters given (defaults for the rest) and the template's
// conditions.
type eval struct {
	t          *testing.T
	params     map[string]string
	conditions map[string]any
}

func (e *eval) value(v any) any {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			out[i] = e.value(y)
		}
		return out
	case map[string]any:
		for k, arg := range x {
			args, _ := arg.([]any)
			switch k {
			case "Ref":
				name := arg.(string)
				v, ok := e.params[name]
				if !ok {
					e.t.Fatalf("no value for parameter %s", name)
				}
				return v
			case "Fn::If":
				if e.cond(args[0].(string)) {
					return e.value(args[1])
				}
				return e.value(args[2])
			case "Fn::Join":
				var parts []string
				for _, p := range e.value(args[1]).([]any) {
					parts = append(parts, p.(string))
				}
				return strings.Join(parts, args[0].(string))
			case "Fn::Split":
				var out []any
				for _, p := range strings.Split(e.value(args[1]).(string), args[0].(string)) {
					out = append(out, p)
				}
				return out
			case "Fn::Select":
				i, _ := strconv.Atoi(fmt.Sprint(args[0]))
				return e.value(args[1]).([]any)[i]
			case "Fn::Sub":
				text, vars := args[0].(string), args[1].(map[string]any)
				for name, v := range vars {
					text = strings.ReplaceAll(text, "${"+name+"}", e.value(v).(string))
				}
				return text
			}
		}
	}
	e.t.Fatalf("cannot evaluate %v", v)
	return nil
}

func (e *eval) cond(name string) bool {
	c, ok := e.conditions[name]
	if !ok {
		e.t.Fatalf("no condition %s", name)
	}
	return e.truth(c)
}

func (e *eval) truth(v any) bool {
	m, _ := v.(map[string]any)
	for k, arg := range m {
		args, _ := arg.([]any)
		switch k {
		case "Condition":
			return e.cond(arg.(string))
		case "Fn::Not":
			return !e.truth(args[0])
		case "Fn::Equals":
			return fmt.Sprint(e.value(args[0])) == fmt.Sprint(e.value(args[1]))
		case "Fn::And", "Fn::Or":
			all, some := true, false
			for _, a := range args {
				b := e.truth(a)
				all, some = all && b, some || b
			}
			if k == "Fn::And" {
				return all
			}
			return some
		}
	}
	e.t.Fatalf("cannot evaluate condition %v", v)
	return false
}

// TestTlsCertExampleWorks deploys, in effect, the tlscert function and its
// example secret with several parameter sets: the environment and the
// example value are evaluated from the template, then the example is
// rotated against the emulator with a CA made here. With no allowed name
// the function must refuse its configuration and the example must not be
// created.
func TestTlsCertExampleWorks(t *testing.T) {
	tpl := loadTemplate(t)
	s := sections(t)
	em := testbed.Emulator(t)
	caARN := testbed.CreateSecret(t, em, testCASecret(t))
	for _, c := range []struct {
		name   string
		params map[string]string
		want   string // the example's common name; "" when there is no example
	}{
		{"no names", map[string]string{}, ""},
		{"suffixes", map[string]string{"TlsAllowedDnsSuffixes": "svc.example.com,example.org"}, "rotation-example.svc.example.com"},
		{"exact names", map[string]string{"TlsAllowedNames": "www.example.net,api.example.net"}, "www.example.net"},
		{"pinned", map[string]string{"TlsCommonName": "api.example.com", "TlsSubjectAlternativeNames": "api2.example.com"}, "api.example.com"},
		{"pinned within suffix", map[string]string{"TlsAllowedDnsSuffixes": "example.com", "TlsCommonName": "api.example.com"}, "api.example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &eval{t: t, params: map[string]string{"TlsCaSecretArn": caARN, "CreateExamples": "true"}, conditions: s["Conditions"]}
			for name, p := range s["Parameters"] {
				if _, set := e.params[name]; !set {
					d, _ := p.(map[string]any)["Default"]
					e.params[name] = fmt.Sprint(d)
				}
			}
			for k, v := range c.params {
				e.params[k] = v
			}
			env := map[string]string{}
			for k, v := range envOf(t, tpl, "TlsCertFunction") {
				env[k] = e.value(v).(string)
			}
			cfg, err := tlscert.ConfigFromEnv(func(k string) string { return env[k] })
			if c.want == "" {
				if err == nil {
					t.Fatal("the function accepted a configuration that allows no name")
				}
				if e.cond("CreateTlsExample") {
					t.Fatal("the example would be created for a function that signs nothing")
				}
				return
			}
			if err != nil {
				t.Fatalf("configuration from the template: %v", err)
			}
			if !e.cond("CreateTlsExample") {
				t.Fatal("no example created")
			}
			value := e.value(props(tpl.resources["TlsCertExampleSecret"])["SecretString"]).(string)
			if want := `{"commonName":"` + c.want + `"}`; value != want {
				t.Fatalf("example secret %s, want %s", value, want)
			}
			arn := testbed.CreateSecret(t, em, value)
			engine := rotation.New(em.SM, tlscert.New(cfg, testbed.AWSConfig(t)), rotation.Options{TargetType: "tlscert"})
			if _, err := em.Rotate(context.Background(), arn, localrun.InvokerFunc(engine.Handle), localrun.Options{Attempts: 1}); err != nil {
				t.Fatalf("rotating the example: %v", err)
			}
		})
	}
}

// testCASecret makes a self-signed CA in the format of tlscert's CA secret.
func testCASecret(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "samtemplate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), crypto.Signer(key))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"privateKey":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})),
	})
	return string(b)
}
