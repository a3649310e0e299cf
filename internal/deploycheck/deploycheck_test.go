package deploycheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

const samples = "testdata/events"

// fixture is the packaged template and the parameter values, made once and
// shared by the tests of this package.
var fixture struct {
	once     sync.Once
	err      error
	d        *Deployer
	packaged Template
	params   map[string]string
}

func setup(t *testing.T) (*Deployer, Template, map[string]string) {
	t.Helper()
	cfg := testbed.AWSConfig(t)
	if em := os.Getenv("EMULATOR"); em != "localstack" {
		t.Fatalf("the deploy check needs LocalStack's CloudFormation, and the test bed runs EMULATOR=%s: run scripts/testbed.sh up with LocalStack (Python 3.13, see README.md)", em)
	}
	root := testbed.ModuleRoot(t)
	built := filepath.Join(root, ".testbed", "sam-build", "template.yaml")
	sam := filepath.Join(root, ".testbed", "sam-venv", "bin", "sam")
	for _, f := range []string{built, sam} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: the deploy check packages the template that `sam build` made: run scripts/sam-check.sh (make test runs it before the Go tests)", err)
		}
	}
	fixture.once.Do(func() {
		ctx := context.Background()
		c := NewClients(cfg)
		d := &Deployer{C: c, Bucket: "deploycheck-" + randHex(4), Endpoint: os.Getenv("AWS_ENDPOINT_URL")}
		packaged, err := d.Package(ctx, sam, built, filepath.Join(t.TempDir(), "packaged.yaml"))
		if err != nil {
			fixture.err = err
			return
		}
		params, err := everyParameter(ctx, cfg, packaged)
		if err != nil {
			fixture.err = err
			return
		}
		fixture.d, fixture.packaged, fixture.params = d, packaged, params
	})
	if fixture.err != nil {
		t.Fatalf("set up the deploy check: %v", fixture.err)
	}
	return fixture.d, fixture.packaged, fixture.params
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// chosen are the values of the parameters whose other values cannot be
// derived from their declaration: those that name resources (made on the
// emulator by everyParameter) and those with a pattern. Every other
// parameter gets a value other than its default from its AllowedValues or
// its MinValue/MaxValue, so a parameter added to template.yaml is set too;
// one the check cannot set fails the test, naming it.
var chosen = map[string]string{
	"AlarmEmail":                "rotation-alerts@example.com",
	"CreateExamples":            "true",
	"RotationWindow":            "3h",
	"PasswordExcludeCharacters": `"'\`,
	"DbCaBundle":                "/var/task/db-ca-bundle.pem",
	"DataKeyGracePeriod":        "30d",
	"JwtGracePeriod":            "2d",
	"IamUserPath":               "/rotation-test/",
	"TlsAcmCertificateArn":      "arn:aws:acm:us-east-1:000000000000:certificate/0b6b2c8e-1111-4a2b-9c3d-000000000001",
	// The template's rule TlsOneIssuer allows one issuer: TlsCaSecretArn is set.
	"TlsAcmPcaArn":                 "",
	"TlsAllowedDnsSuffixes":        "svc.example.com,example.net",
	"TlsAllowedNames":              "api.example.org",
	"TlsCommonName":                "www.svc.example.com",
	"TlsSubjectAlternativeNames":   "www.svc.example.com,api.svc.example.com",
	"MetricsNamespace":             "RotationDeployCheck",
	"RotatedSecretsNamePrefix":     "app/",
	"PostgresMasterAllowedServers": "pg.internal.example:5432",
	"PostgresMasterAllowedUsers":   "app_*",
	"MySqlMasterAllowedServers":    "mysql.internal.example:3306",
	"MySqlMasterAllowedUsers":      "app_*",
	"RedisCaBundle":                "/var/task/redis-ca-bundle.pem",
	"RedisMasterAllowedServers":    "cache.internal.example:6379",
	"RedisMasterAllowedUsers":      "app_*",
	"RedisPlaintextServers":        "cache-dev.internal.example:6379",
	"RabbitMqCaBundle":             "/var/task/rabbitmq-ca-bundle.pem",
	"RabbitMqMasterAllowedServers": "broker.internal.example:15671",
	"RabbitMqMasterAllowedUsers":   "app_*",
	"DirectoryUrl":                 "ldaps://dc1.corp.example:636",
	"DirectoryAllowedBaseDns":      "OU=ServiceAccounts,DC=corp,DC=example",
	"DirectoryKerberosRealm":       "CORP.EXAMPLE",
	"DirectoryKerberosKdcs":        "dc1.corp.example:88",
	"DirectoryCaBundle":            "/var/task/directory-ca-bundle.pem",
	"ProviderConfigFile":           "/var/task/examplesaas.json",
	"ProviderConfig":               "",
	"ProviderBaseUrl":              "https://api.provider.example/v1",
	"ProviderCaFile":               "/var/task/provider-ca.pem",
	"AuditSchedule":                "rate(2 hours)",
	"AuditNamePrefix":              "app/",
	"AuditOverdueSlack":            "2d",
	"AuditStuckAfter":              "12h",
	"AuditAccessKeyMaxAge":         "60d",
}

// everyParameter returns a value for every parameter of tpl, other than its
// default, making on the emulator the resources that some name.
func everyParameter(ctx context.Context, cfg aws.Config, tpl Template) (map[string]string, error) {
	km := kms.NewFromConfig(cfg)
	key := func(purpose string) (string, error) {
		out, err := km.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("deploy check: " + purpose)})
		if err != nil {
			return "", fmt.Errorf("create KMS key for %s: %w", purpose, err)
		}
		return aws.ToString(out.KeyMetadata.Arn), nil
	}
	sm := secretsmanager.NewFromConfig(cfg)
	secret := func(purpose string) (string, error) {
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
			Name: aws.String("deploycheck/" + purpose + "-" + randHex(4)), SecretString: aws.String(`{"note":"deploy check"}`),
		})
		if err != nil {
			return "", fmt.Errorf("create secret for %s: %w", purpose, err)
		}
		return aws.ToString(out.ARN), nil
	}
	vals := map[string]string{}
	for k, v := range chosen {
		vals[k] = v
	}
	var err error
	made := func(name string, f func(string) (string, error), purpose string) {
		if err == nil {
			vals[name], err = f(purpose)
		}
	}
	made("LogsKmsKeyArn", key, "logs")
	made("DataKeyKmsKeyArn", key, "data keys")
	made("TlsCaSecretArn", secret, "tls-ca")
	var a, b string
	if err == nil {
		a, err = key("secrets a")
	}
	if err == nil {
		b, err = key("secrets b")
	}
	vals["SecretsKmsKeyArns"] = a + "," + b
	if err == nil {
		a, err = secret("postgres-master")
	}
	vals["PostgresMasterSecretArns"] = a
	if err == nil {
		a, err = secret("mysql-master")
	}
	vals["MySqlMasterSecretArns"] = a
	for _, f := range []string{"RedisMasterSecretArns", "RabbitMqMasterSecretArns", "DirectoryMasterSecretArns"} {
		if err == nil {
			vals[f], err = secret(strings.ToLower(strings.TrimSuffix(f, "SecretArns")))
		}
	}
	made("ProviderAdminSecretArn", secret, "provider-admin")
	if err == nil {
		vals["DbSubnetIds"], vals["DbSecurityGroupIds"], err = network(ctx, cfg)
	}
	// The other functions that may run in a VPC share the network.
	for _, f := range []string{"Redis", "RabbitMq", "Directory"} {
		vals[f+"SubnetIds"], vals[f+"SecurityGroupIds"] = vals["DbSubnetIds"], vals["DbSecurityGroupIds"]
	}
	if err != nil {
		return nil, err
	}
	var missing []string
	for name, decl := range tpl.Parameters() {
		if _, ok := vals[name]; ok {
			continue
		}
		if v, ok := otherValue(decl); ok {
			vals[name] = v
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("parameters %v: the deploy check cannot choose a value other than the default: add one to `chosen` in internal/deploycheck/deploycheck_test.go", missing)
	}
	return vals, nil
}

// otherValue picks a value other than the default from a parameter's
// declaration.
func otherValue(decl map[string]any) (string, bool) {
	def := scalar(decl["Default"])
	if allowed, ok := decl["AllowedValues"].([]any); ok {
		for _, v := range allowed {
			if scalar(v) != def {
				return scalar(v), true
			}
		}
	}
	if decl["Type"] == "Number" {
		for _, k := range []string{"MinValue", "MaxValue"} {
			if v, ok := decl[k]; ok && scalar(v) != def {
				return scalar(v), true
			}
		}
		if d, err := strconv.Atoi(def); err == nil {
			return strconv.Itoa(d + 1), true
		}
	}
	return "", false
}

// network makes a VPC, two subnets and a security group on the emulator
// (LocalStack's Lambda checks that a function's subnets exist).
func network(ctx context.Context, cfg aws.Config) (subnets, group string, err error) {
	e := ec2.NewFromConfig(cfg)
	vpc, err := e.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		return "", "", fmt.Errorf("create VPC: %w", err)
	}
	var ids []string
	for i, cidr := range []string{"10.77.1.0/24", "10.77.2.0/24"} {
		s, err := e.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr), AvailabilityZone: aws.String("us-east-1" + string(rune('a'+i)))})
		if err != nil {
			return "", "", fmt.Errorf("create subnet: %w", err)
		}
		ids = append(ids, aws.ToString(s.Subnet.SubnetId))
	}
	sg, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("deploycheck-" + randHex(4)), Description: aws.String("deploy check"), VpcId: vpc.Vpc.VpcId,
	})
	if err != nil {
		return "", "", fmt.Errorf("create security group: %w", err)
	}
	return strings.Join(ids, ","), aws.ToString(sg.GroupId), nil
}

func stackName(prefix string) string { return prefix + "-" + randHex(3) }

func check(t *testing.T, d *Deployer, stack string) *Report {
	t.Helper()
	rep, err := Check(context.Background(), d.C, stack, samples)
	if err != nil {
		t.Fatalf("check %s: %v", stack, err)
	}
	return rep
}

// listParameters returns the names of the template's list parameters.
func listParameters(tpl Template) map[string]bool {
	out := map[string]bool{}
	for name, decl := range tpl.Parameters() {
		if t, _ := decl["Type"].(string); t == "CommaDelimitedList" || strings.HasPrefix(t, "List<") {
			out[name] = true
		}
	}
	return out
}

// TestDeployedStackMatchesTemplate deploys the packaged template with
// examples on and every other parameter set to a value other than its
// default, except the list parameters; compares what was made with the
// template; updates the stack once, setting the list parameters too (which
// turns on the VPC, the secrets' KMS policy and the master secrets'
// statements) and changing values that reach every function and schedule;
// and compares again.
//
// The list parameters are set by the update, not at creation, because
// LocalStack 4.14 cannot update a stack whose list parameter was non-empty
// before: its change-set engine joins the previous value without splitting
// it ("Invalid arguments list definition for Fn::Join",
// engine/v2/change_set_model_preproc.py). AWS has no such limit.
func TestDeployedStackMatchesTemplate(t *testing.T) {
	d, packaged, params := setup(t)
	ctx := context.Background()
	lists := listParameters(packaged)
	create := map[string]string{}
	for k, v := range params {
		if !lists[k] {
			create[k] = v
		}
	}
	name := stackName("deploycheck")
	start := time.Now()
	if err := d.Create(ctx, name, packaged, create); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Delete(context.Background(), name) })
	t.Logf("created %s in %s", name, time.Since(start).Round(time.Millisecond))
	rep := check(t, d, name)
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.Compared < 100 {
		t.Fatalf("only %d properties compared", rep.Compared)
	}
	t.Logf("after create: %d properties and outputs match the template", rep.Compared)

	updated := map[string]string{}
	for k, v := range params {
		updated[k] = v
	}
	updated["LogLevel"] = "warn"
	updated["PasswordLength"] = "48"
	updated["ApiKeyRotationDays"] = "7"
	// RotationWindow stays: changing it updates every RotationSchedule,
	// and LocalStack 4.14 then deletes the last one it updated at the end
	// of the update (seen in the stack's events: UPDATE_COMPLETE, then
	// DELETE_COMPLETE of TlsCertExampleRotation, nothing in the template
	// asking for it); the template's schedules are checked on create.
	start = time.Now()
	if err := d.Update(ctx, name, packaged, updated); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s in %s", name, time.Since(start).Round(time.Millisecond))
	rep = check(t, d, name)
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("after update (every parameter set): %d properties and outputs match the template; not read back:\n  %s",
		rep.Compared, strings.Join(rep.NotRead, "\n  "))
}

// functionPrefixes returns the prefixes <F> of the template's <F>Function
// resources, sorted.
func functionPrefixes(tpl Template) []string {
	var out []string
	for id, r := range tpl.Resources() {
		if r["Type"] == "AWS::Serverless::Function" && strings.HasSuffix(id, "Function") {
			out = append(out, strings.TrimSuffix(id, "Function"))
		}
	}
	sort.Strings(out)
	return out
}

func props(t *testing.T, tpl Template, id string) map[string]any {
	t.Helper()
	r, ok := tpl.Resources()[id]
	if !ok {
		t.Fatalf("the template has no %s", id)
	}
	p, ok := r["Properties"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no Properties", id)
	}
	return p
}

// TestCheckCatchesWiringMistakes plants, in a copy of the packaged
// template, each wiring mistake that cfn-lint, `sam validate --lint` and a
// reading of the template let through, deploys it, and expects the check to
// fail on it. The functions are the template's first two with a failure
// alarm.
func TestCheckCatchesWiringMistakes(t *testing.T) {
	d, packaged, all := setup(t)
	// Without the list parameters, so that LocalStack can delete the stacks.
	params := map[string]string{}
	lists := listParameters(packaged)
	for k, v := range all {
		if !lists[k] {
			params[k] = v
		}
	}
	// Functions with a failure alarm of their own (the rotation functions;
	// the auditor's alarms watch other metrics).
	var fns []string
	for _, f := range functionPrefixes(packaged) {
		if _, ok := packaged.Resources()[f+"FailureAlarm"]; ok {
			fns = append(fns, f)
		}
	}
	if len(fns) < 2 {
		t.Fatalf("the template has %d functions with a failure alarm, want at least 2", len(fns))
	}
	a, b := fns[0], fns[1]
	mistakes := []struct {
		name  string
		plant func(t *testing.T, tpl Template)
		want  string // in a problem of the report
	}{
		{"alarm watches another function", func(t *testing.T, tpl Template) {
			metrics, _ := props(t, tpl, a+"FailureAlarm")["Metrics"].([]any)
			m, _ := metrics[0].(map[string]any)
			sub, _ := m["Expression"].(map[string]any)
			expr, _ := sub["Fn::Sub"].(string)
			if !strings.Contains(expr, "${"+a+"Function}") {
				t.Fatalf("%sFailureAlarm's expression %q does not name ${%sFunction}", a, expr, a)
			}
			sub["Fn::Sub"] = strings.ReplaceAll(expr, "${"+a+"Function}", "${"+b+"Function}")
		}, a + "FailureAlarm watches functions"},
		{"function logs into another's log group", func(t *testing.T, tpl Template) {
			lc, _ := props(t, tpl, a+"Function")["LoggingConfig"].(map[string]any)
			lc["LogGroup"] = map[string]any{"Ref": b + "LogGroup"}
		}, a + "Function logs into"},
		{"typo in the EventBridge pattern", func(t *testing.T, tpl Template) {
			pattern, _ := props(t, tpl, "RotationEventsRule")["EventPattern"].(map[string]any)
			detail, _ := pattern["detail"].(map[string]any)
			names, _ := detail["eventName"].([]any)
			if !slices.Contains(names, any("RotationFailed")) {
				t.Fatalf("RotationEventsRule's pattern has no RotationFailed: %v", names)
			}
			for i, n := range names {
				if n == "RotationFailed" {
					names[i] = "RotationFailled"
				}
			}
		}, "RotationEventsRule: its pattern"},
		{"role bound to another function", func(t *testing.T, tpl Template) {
			props(t, tpl, a+"Function")["Role"] = map[string]any{"Fn::GetAtt": []any{b + "Role", "Arn"}}
		}, a + "Function runs with role"},
	}
	for _, m := range mistakes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			tpl := packaged.Clone()
			m.plant(t, tpl)
			name := stackName("planted")
			ctx := context.Background()
			if err := d.Create(ctx, name, tpl, params); err != nil {
				t.Fatalf("deploy with the mistake planted: %v", err)
			}
			t.Cleanup(func() { _ = d.Delete(context.Background(), name) })
			rep := check(t, d, name)
			if rep.Err() == nil {
				t.Fatalf("the check passed a stack with %q planted", m.name)
			}
			found := false
			for _, p := range rep.Problems {
				found = found || strings.Contains(p, m.want)
			}
			if !found {
				t.Fatalf("the check failed, but not on the planted mistake (want a problem containing %q):\n%v", m.want, rep.Err())
			}
			t.Logf("caught: %v", rep.Err())
		})
	}
}
