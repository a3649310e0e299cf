package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestRotationUnderTheRuntimeInterfaceEmulator builds the function, runs its
// bootstrap under aws-lambda-rie and rotates a JSON secret twice through the
// local runner, the way Secrets Manager would. It then checks the labels,
// the kept fields, the audit log lines, and that no value, old or new,
// appears anywhere in the function's output.
func TestRotationUnderTheRuntimeInterfaceEmulator(t *testing.T) {
	bootstrap := testbed.BuildFunction(t, "generic")
	em := testbed.Emulator(t)
	out := &testbed.LogBuffer{}
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary:    testbed.RIEBinary(t),
		Bootstrap: bootstrap,
		Env:       []string{"SECRET_FIELD=password", "PASSWORD_LENGTH=40", "LOG_LEVEL=debug"},
		Output:    out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()

	initial := `{"username":"app","password":"initial-pw-0001","host":"db.internal"}`
	arn := testbed.CreateSecret(t, em, initial)
	var values []string
	for i := range 2 {
		res, err := em.Rotate(context.Background(), arn, rie, localrun.Options{})
		if err != nil {
			t.Fatalf("rotation %d: %v\nfunction output:\n%s", i+1, err, out.String())
		}
		if !slices.Contains(res.StagesAfter[res.Token], "AWSCURRENT") {
			t.Fatalf("rotation %d: token has stages %v", i+1, res.StagesAfter[res.Token])
		}
		values = append(values, testbed.ValueOf(t, em, arn, res.Token))
	}
	for _, v := range values {
		var doc map[string]string
		if err := json.Unmarshal([]byte(v), &doc); err != nil {
			t.Fatal(err)
		}
		if doc["username"] != "app" || doc["host"] != "db.internal" || len(doc["password"]) != 40 {
			t.Errorf("rotated secret lost a field or has a wrong password length")
		}
		values = append(values, doc["password"])
	}
	if testbed.ValueAt(t, em, arn, "AWSPREVIOUS") != values[0] {
		t.Error("AWSPREVIOUS is not the first rotation's value")
	}

	logs := out.String()
	for _, v := range append(values, "initial-pw-0001") {
		if strings.Contains(logs, v) {
			t.Errorf("the function's output contains a secret value")
		}
	}
	steps := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue // the emulator's own lines
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("function log line is not JSON: %q", line)
			continue
		}
		if rec["msg"] != "rotation step done" {
			continue
		}
		steps++
		for _, k := range []string{"step", "secret_arn", "version_id", "outcome", "duration_ms", "target", "function"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line lacks %q: %s", k, line)
			}
		}
		checkEMF(t, line)
	}
	if steps != 8 {
		t.Errorf("%d step log lines for two rotations, want 8", steps)
	}
}

// TestInvalidConfigurationFailsEveryInvocation checks that a bad setting
// reaches Secrets Manager as a clear error and changes nothing.
func TestInvalidConfigurationFailsEveryInvocation(t *testing.T) {
	bootstrap := testbed.BuildFunction(t, "generic")
	em := testbed.Emulator(t)
	cases := map[string]string{
		"PASSWORD_LENGTH=0":            "PASSWORD_LENGTH",
		"SECRET_KIND=certificate":      "certificate",
		"VERIFY_URL=http://example.ok": "https",
	}
	for setting, want := range cases {
		t.Run(setting, func(t *testing.T) {
			rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
				Binary: testbed.RIEBinary(t), Bootstrap: bootstrap, Env: []string{setting},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer rie.Close()
			arn := testbed.CreateSecret(t, em, "v0")
			token := localrun.NewToken()
			if _, err := em.OpenRotation(context.Background(), arn, token); err != nil {
				t.Fatal(err)
			}
			err = rie.Invoke(context.Background(), events.SecretsManagerSecretRotationEvent{Step: "createSecret", SecretID: arn, ClientRequestToken: token})
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "configuration") {
				t.Fatalf("error %v does not name %q", err, want)
			}
			if fe, ok := err.(*localrun.FunctionError); !ok || fe.Type != "ConfigError" {
				t.Errorf("Lambda error type %v, want ConfigError", err)
			}
			if testbed.ValueAt(t, em, arn, "AWSCURRENT") != "v0" {
				t.Error("AWSCURRENT changed")
			}
			stages, _ := em.Stages(context.Background(), arn)
			if !slices.Contains(stages[token], "AWSPENDING") || len(stages) != 2 {
				t.Errorf("labels changed: %v", stages)
			}
		})
	}
}

// checkEMF checks that a step's log line is also a valid CloudWatch Embedded
// Metric Format record: every dimension and metric it declares is a field of
// the line, and the counts say success.
func checkEMF(t *testing.T, line string) {
	t.Helper()
	var rec struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal([]byte(line), &fields)
	if rec.AWS.Timestamp == 0 || len(rec.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("no EMF metadata in %s", line)
	}
	m := rec.AWS.CloudWatchMetrics[0]
	if m.Namespace != "SecretsRotation" || len(m.Dimensions) != 1 || !slices.Equal(m.Dimensions[0], []string{"function", "step"}) {
		t.Errorf("EMF namespace/dimensions %q %v", m.Namespace, m.Dimensions)
	}
	names := map[string]string{}
	for _, d := range m.Dimensions[0] {
		if _, ok := fields[d].(string); !ok {
			t.Errorf("EMF dimension %q is not a string field of the line", d)
		}
	}
	for _, x := range m.Metrics {
		names[x.Name] = x.Unit
		if _, ok := fields[x.Name].(float64); !ok {
			t.Errorf("EMF metric %q has no numeric value in the line", x.Name)
		}
	}
	if names["RotationStepDuration"] != "Milliseconds" || names["RotationStepSuccess"] != "Count" || names["RotationStepFailure"] != "Count" {
		t.Errorf("EMF metrics %v", names)
	}
	if fields["RotationStepSuccess"] != 1.0 || fields["RotationStepFailure"] != 0.0 {
		t.Errorf("a successful step counts success=%v failure=%v", fields["RotationStepSuccess"], fields["RotationStepFailure"])
	}
}
