package provider_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed/keyprovider"
)

// TestEndToEndUnderRIE builds functions/provider, runs it under the Runtime
// Interface Emulator with the shipped examplesaas.json (only the base URL
// and the CA file replaced, as a deployment would) and rotates a secret
// three times through the local runner. The provider then holds the
// current and previous keys only, and the function's whole output holds no
// key and no admin credential.
func TestEndToEndUnderRIE(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	bootstrap := testbed.BuildFunction(t, "provider")
	out := f.logs // scanned for keys when the test ends, as every test's
	env := []string{
		"AWS_LAMBDA_FUNCTION_NAME=provider-rotation",
		"AWS_REGION=" + f.awsCfg.Region,
		"PROVIDER_CONFIG_FILE=" + filepath.Join(testbed.ModuleRoot(t), "functions", "provider", "configs", "examplesaas.json"),
		"PROVIDER_BASE_URL=" + f.prov.URL,
		"PROVIDER_CA_FILE=" + f.prov.CAFile,
		"ADMIN_SECRET_ID=" + f.adminARN,
		"LOG_LEVEL=debug",
	}
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{Binary: testbed.RIEBinary(t), Bootstrap: bootstrap, Env: env, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	arn := testbed.CreateSecret(t, f.em, `{"owner":"team-a"}`)
	for i := range 3 {
		res, err := f.em.Rotate(context.Background(), arn, rie, localrun.Options{Attempts: 1})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		if !slices.Contains(res.StagesAfter[res.Token], "AWSCURRENT") {
			t.Fatalf("rotation %d: stages %v", i+1, res.StagesAfter)
		}
	}
	f.wantLive("after three rotations under the RIE", f.field(arn, "AWSPREVIOUS", "keyId"), f.field(arn, "AWSCURRENT", "keyId"))
	logs := out.String()
	for _, s := range append(f.prov.Issued(), f.prov.AdminToken) {
		if strings.Contains(logs, s) {
			t.Fatal("the function's output holds a key or the admin credential")
		}
	}
	revoked, created := 0, 0
	for _, line := range strings.Split(logs, "\n") {
		var rec map[string]any
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch rec["msg"] {
		case "provider key created":
			created++
		case "provider key revoked":
			revoked++
		}
	}
	if created != 3 || revoked != 1 {
		t.Errorf("log lines: %d keys created, %d revoked; want 3 and 1", created, revoked)
	}
}
