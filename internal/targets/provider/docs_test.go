package provider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestDocumentedConfigurationsAreValid: every configuration document shown
// in docs/provider.md (the three providers' mappings among them) passes the
// checks the function makes at start-up, so the page cannot drift from the
// format.
func TestDocumentedConfigurationsAreValid(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testbed.ModuleRoot(t), "docs", "provider.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(b), "```json\n")[1:] {
		doc, _, _ := strings.Cut(block, "```")
		if !strings.Contains(doc, `"create"`) {
			continue
		}
		n++
		if _, err := ConfigFromEnv(env(map[string]string{"PROVIDER_CONFIG": doc, "ADMIN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:000000000000:secret:admin-AbCdEf"})); err != nil {
			t.Errorf("document %d of docs/provider.md: %v", n, err)
		}
	}
	if n < 4 {
		t.Errorf("found %d configuration documents in docs/provider.md, want the example and the three providers", n)
	}
}
