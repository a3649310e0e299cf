package provider

import (
	"path/filepath"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestShippedConfigurationsAreValid: the examples in functions/provider/configs
// pass the checks a function makes at start-up.
func TestShippedConfigurationsAreValid(t *testing.T) {
	for _, name := range []string{"examplesaas.json", "rabbitmq.json"} {
		file := filepath.Join(testbed.ModuleRoot(t), "functions", "provider", "configs", name)
		c, err := ConfigFromEnv(env(map[string]string{"PROVIDER_CONFIG_FILE": file, "ADMIN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:000000000000:secret:admin-AbCdEf"}))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if c.create == nil || c.test == nil || c.revoke == nil || c.list == nil {
			t.Errorf("%s: a request is missing: %+v", name, c)
		}
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
