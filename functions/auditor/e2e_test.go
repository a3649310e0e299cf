package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestAuditorUnderTheRuntimeInterfaceEmulator builds the function, runs it
// under aws-lambda-rie with the sample scheduled event, and reads its
// answer and its log: a secret tagged as requiring rotation, with rotation
// off, is a finding; a secret with neither is out of scope.
func TestAuditorUnderTheRuntimeInterfaceEmulator(t *testing.T) {
	em := testbed.Emulator(t)
	prefix := "auditor-e2e-" + localrun.NewToken()[:8] + "/"
	for name, tags := range map[string][]smtypes.Tag{
		"required": {{Key: aws.String(audit.TagRequired), Value: aws.String("true")}},
		"ignored":  nil,
	} {
		out, err := em.SM.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(prefix + name), SecretString: aws.String("v"), Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			em.SM.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
		})
	}
	logs := &testbed.LogBuffer{}
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary: testbed.RIEBinary(t), Bootstrap: testbed.BuildFunction(t, "auditor"), Output: logs,
		Env: []string{"NAME_PREFIX=" + prefix, "AWS_LAMBDA_FUNCTION_NAME=auditor"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	event, err := os.Open(filepath.Join(testbed.ModuleRoot(t), "events", "auditor", "scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer event.Close()
	resp, err := http.Post(rie.URL, "application/json", event)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var res audit.Result
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %s: %v\n%s", resp.StatusCode, body, err, logs.String())
	}
	if res.SecretsListed != 2 || res.SecretsInScope != 1 || res.Findings[audit.Disabled] != 1 {
		t.Errorf("result %+v", res)
	}
	var finding bool
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.HasPrefix(l, "{") && strings.Contains(l, `"msg":"audit finding"`) {
			finding = strings.Contains(l, `"finding":"disabled"`) && strings.Contains(l, prefix+"required") && strings.Contains(l, `"AuditFinding":1`)
		}
	}
	if !finding {
		t.Errorf("no disabled finding in the function's log:\n%s", logs.String())
	}
}
