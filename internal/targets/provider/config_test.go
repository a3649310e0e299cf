package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// saasDoc is a valid document of the SaaS shape, as a tree to mutate.
func saasDoc() map[string]any {
	var m map[string]any
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "functions", "provider", "configs", "examplesaas.json"))
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

func rabbitDoc() map[string]any {
	var m map[string]any
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "functions", "provider", "configs", "rabbitmq.json"))
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// set changes the value at a dotted path of the tree; nil deletes it.
func set(m map[string]any, path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	cur := m
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	if v == nil {
		delete(cur, parts[len(parts)-1])
	} else {
		cur[parts[len(parts)-1]] = v
	}
	return m
}

func parseDoc(m map[string]any, extra map[string]string) (Config, error) {
	b, _ := json.Marshal(m)
	e := map[string]string{"PROVIDER_CONFIG": string(b), "ADMIN_SECRET_ID": "admin-secret"}
	for k, v := range extra {
		e[k] = v
	}
	return ConfigFromEnv(env(e))
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		name string
		doc  map[string]any
		env  map[string]string
		want []string
	}{
		{"missing create", set(saasDoc(), "create", nil), nil, []string{"PROVIDER_CONFIG", "create: missing"}},
		{"missing revoke", set(saasDoc(), "revoke", nil), nil, []string{"revoke: missing"}},
		{"missing test", set(saasDoc(), "test", nil), nil, []string{"test: missing"}},
		{"http base", set(saasDoc(), "base_url", "http://api.saas.example"), nil, []string{"base_url", "https://"}},
		{"http override", saasDoc(), map[string]string{"PROVIDER_BASE_URL": "http://10.0.0.1"}, []string{"PROVIDER_BASE_URL", "https://"}},
		{"user info", set(saasDoc(), "base_url", "https://u:p@api.saas.example"), nil, []string{"base_url", "user information"}},
		{"absolute path", set(saasDoc(), "create.path", "https://evil.example/v1/keys"), nil, []string{"create.path"}},
		{"protocol-relative path", set(saasDoc(), "revoke.path", "//evil.example/{{key_id}}"), nil, []string{"revoke.path"}},
		{"pointer matches nothing", set(saasDoc(), "create.response.key", "/secret"), nil, []string{"create.response.key", `"/secret"`, "sample"}},
		{"bad pointer", set(saasDoc(), "create.response.id", "id"), nil, []string{"create.response.id"}},
		{"list pointer", set(saasDoc(), "list.response.items", "/keys"), nil, []string{"list.response.items"}},
		{"no sample", set(saasDoc(), "create.sample", nil), nil, []string{"create.sample: missing"}},
		{"unknown variable", set(saasDoc(), "create.json.name", "{{secret.owner}}"), nil, []string{"create.json.name", "unknown template variable {{secret.owner}}"}},
		{"admin var in test", set(saasDoc(), "test.headers.X-Admin", "{{admin.token}}"), nil, []string{"test.headers.X-Admin", "{{admin.token}}"}},
		{"key in URL", set(saasDoc(), "test.path", "/v1/me?key={{key}}"), nil, []string{"test.path", "credential"}},
		{"unknown filter", set(saasDoc(), "create.json.name", "{{name|upper}}"), nil, []string{"create.json.name", "unknown filter"}},
		{"unclosed", set(saasDoc(), "create.json.name", "{{name"), nil, []string{"create.json.name", "{{ without }}"}},
		{"unknown field", set(saasDoc(), "create.bodyy", "x"), nil, []string{"unknown field", "bodyy"}},
		{"bad method", set(saasDoc(), "revoke.method", "PURGE"), nil, []string{"revoke.method"}},
		{"bad auth", set(saasDoc(), "revoke.auth", "pending"), nil, []string{"revoke.auth"}},
		{"host header", set(saasDoc(), "create.headers.Host", "evil.example"), nil, []string{"create.headers", "Host"}},
		{"name without token", set(saasDoc(), "key.name", "rotation-{{secret_hash}}"), nil, []string{"key.name", "{{token}}"}},
		{"name without secret", set(saasDoc(), "key.name", "rotation-{{token}}"), nil, []string{"key.name", "{{secret_hash}}"}},
		{"list without name", set(set(saasDoc(), "key.name", nil), "create.json.name", "k-{{token}}"), nil, []string{"key.name: missing"}},
		{"no key in answer", set(saasDoc(), "create.response", map[string]any{"id": "/id"}), nil, []string{"create.response.key: missing"}},
		{"admin without secret", saasDoc(), map[string]string{"ADMIN_SECRET_ID": " "}, []string{"admin.secret_id: missing"}},
		{"grace", saasDoc(), map[string]string{"GRACE_PERIOD": "7d"}, []string{"GRACE_PERIOD", "unset", "0"}},
		{"ca file", set(saasDoc(), "ca_file", "/no/such/ca.pem"), nil, []string{"ca_file"}},
		{"expect 302", set(saasDoc(), "create.expect", []any{302}), nil, []string{"create.expect"}},
		{"gone outside revoke", set(saasDoc(), "create.gone", []any{404}), nil, []string{"create.gone"}},
		// Without list, a privileged revoke could not prove a key id is
		// this secret's; without list or key.id, a crash could double a key
		// unless create sends the token.
		{"admin revoke unprovable", set(set(set(saasDoc(), "list", nil), "key.name", nil), "create.json.name", "k-{{token}}"), nil, []string{"revoke.auth", "prove"}},
		{"no idempotency", set(set(set(set(set(saasDoc(), "list", nil), "key.name", nil), "create.json.name", "fixed"), "create.headers.Idempotency-Key", nil), "revoke", map[string]any{"method": "DELETE", "path": "/v1/keys/{{key_id}}", "auth": "current", "headers": map[string]any{"Authorization": "Bearer {{current.key}}"}}), nil, []string{"create", "{{token}}"}},
		{"generated id needs PUT", set(rabbitDoc(), "create.method", "POST"), nil, []string{"create.method", "PUT"}},
		{"generated key in answer", set(set(rabbitDoc(), "create.response", map[string]any{"key": "/password"}), "create.sample", map[string]any{"password": "x"}), nil, []string{"create.response.key"}},
		{"test without key", set(rabbitDoc(), "test.basic_auth.password", "x"), nil, []string{"test", "{{key}}"}},
	} {
		_, err := parseDoc(c.doc, c.env)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
	}
}

func TestConfigSources(t *testing.T) {
	b, _ := json.Marshal(saasDoc())
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "PROVIDER_CONFIG_FILE"},
		{map[string]string{"PROVIDER_CONFIG": string(b), "PROVIDER_CONFIG_FILE": file}, "both set"},
		{map[string]string{"PROVIDER_CONFIG_FILE": file + ".missing"}, "PROVIDER_CONFIG_FILE"},
		{map[string]string{"PROVIDER_CONFIG": "{not json"}, "PROVIDER_CONFIG: not a valid configuration document"},
	} {
		if _, err := ConfigFromEnv(env(c.env)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.env, err, c.want)
		}
	}
	c, err := ConfigFromEnv(env(map[string]string{"PROVIDER_CONFIG_FILE": file, "ADMIN_SECRET_ID": "a", "PROVIDER_BASE_URL": "https://127.0.0.1:8443/base/", "GRACE_PERIOD": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Base.String() != "https://127.0.0.1:8443/base" || !c.RevokeAtOnce || c.AdminSecretID != "a" {
		t.Errorf("overrides not applied: base %s, at once %v, admin %q", c.Base, c.RevokeAtOnce, c.AdminSecretID)
	}
	for _, a := range c.Describe() {
		if strings.Contains(a.Value.String(), "{{admin.token}}") {
			t.Errorf("Describe shows a credential template: %v", a)
		}
	}
}
