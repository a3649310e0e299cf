package samtemplate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
)

// The directory function starts with a directory and a subtree named; the
// example secret of the sample events does not exist, so no bind happens.
func init() {
	settings["directory"] = []string{"DIRECTORY_KIND=ldap", "DIRECTORY_URL=ldaps://ldap.example.com", "DIRECTORY_ALLOWED_BASE_DNS=ou=services,dc=example,dc=com"}
}

// TestDirectoryExampleMatchesItsConfiguration deploys, in effect, the
// directory function and its example secret with several parameter sets:
// the function's environment, evaluated from the template, must be a
// configuration the function accepts (or the example must not be created),
// and the example's account must be one that configuration lets the
// function rotate. The master secrets are read-only and only those the
// parameter names; plaintext is off unless the deployer turns it on.
func TestDirectoryExampleMatchesItsConfiguration(t *testing.T) {
	tpl := loadTemplate(t)
	s := sections(t)
	if p, _ := s["Parameters"]["DirectoryAllowPlaintext"].(map[string]any); p["Default"] != "false" {
		t.Errorf("DirectoryAllowPlaintext defaults to %v", p["Default"])
	}
	env := envOf(t, tpl, "DirectoryFunction")
	for v, param := range map[string]string{
		"DIRECTORY_KIND": "DirectoryKind", "DIRECTORY_URL": "DirectoryUrl", "DIRECTORY_ALLOWED_BASE_DNS": "DirectoryAllowedBaseDns",
		"DIRECTORY_KERBEROS_REALM": "DirectoryKerberosRealm", "DIRECTORY_KERBEROS_KDCS": "DirectoryKerberosKdcs",
		"DIRECTORY_CA_BUNDLE": "DirectoryCaBundle", "DIRECTORY_ALLOW_PLAINTEXT": "DirectoryAllowPlaintext",
	} {
		if !isRef(env[v], param) {
			t.Errorf("DirectoryFunction: %s is %v, want !Ref %s", v, env[v], param)
		}
	}
	masters := 0
	for _, st := range statements("DirectoryRole", tpl.resources["DirectoryRole"]) {
		if st.m["Sid"] != "MasterSecrets" {
			continue
		}
		masters++
		if a := strs(st.m["Action"]); !slices.Equal(a, []string{"secretsmanager:GetSecretValue"}) || !isRef(st.m["Resource"], "DirectoryMasterSecretArns") {
			t.Errorf("DirectoryRole's MasterSecrets statement: %v on %v, want GetSecretValue on !Ref DirectoryMasterSecretArns", a, st.m["Resource"])
		}
	}
	if masters != 1 {
		t.Errorf("DirectoryRole has %d MasterSecrets statements, want 1", masters)
	}

	for _, c := range []struct {
		name   string
		params map[string]string
		want   string // the example account; "" when there is none
	}{
		{"no directory", map[string]string{}, ""},
		{"Active Directory without its realm", map[string]string{"DirectoryUrl": "ldaps://dc1.corp.example.com", "DirectoryAllowedBaseDns": "OU=Svc,DC=corp,DC=example,DC=com"}, ""},
		{"Active Directory", map[string]string{
			"DirectoryUrl": "ldaps://dc1.corp.example.com", "DirectoryKerberosRealm": "CORP.EXAMPLE.COM",
			"DirectoryAllowedBaseDns": "OU=ServiceAccounts,DC=corp,DC=example,DC=com;OU=Batch,DC=corp,DC=example,DC=com",
		}, "CN=rotation-example,OU=ServiceAccounts,DC=corp,DC=example,DC=com"},
		{"OpenLDAP over StartTLS", map[string]string{
			"DirectoryKind": "ldap", "DirectoryUrl": "ldap://ldap.example.com:389", "DirectoryAllowedBaseDns": "ou=services,dc=example,dc=com",
		}, "CN=rotation-example,ou=services,dc=example,dc=com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &eval{t: t, params: map[string]string{"CreateExamples": "true", "LAMBDA_TASK_ROOT": "/var/task"}, conditions: s["Conditions"]}
			for name, p := range s["Parameters"] {
				if _, set := e.params[name]; !set {
					d := p.(map[string]any)["Default"]
					e.params[name] = fmt.Sprint(d)
				}
			}
			for k, v := range c.params {
				e.params[k] = v
			}
			vars := map[string]string{"LAMBDA_TASK_ROOT": "/var/task"}
			for k, v := range env {
				vars[k] = e.value(v).(string)
			}
			cfg, err := directory.ConfigFromEnv(func(k string) string { return vars[k] })
			if c.want == "" {
				if err == nil {
					t.Fatal("the function accepted an incomplete configuration")
				}
				if e.cond("CreateDirectoryExample") {
					t.Fatal("the example would be created for a function that cannot work")
				}
				return
			}
			if err != nil {
				t.Fatalf("configuration from the template: %v", err)
			}
			if !e.cond("CreateDirectoryExample") {
				t.Fatal("no example created")
			}
			gen, _ := props(tpl.resources["DirectoryExampleSecret"])["GenerateSecretString"].(map[string]any)
			value := e.value(gen["SecretStringTemplate"]).(string)
			var fields map[string]any
			if err := json.Unmarshal([]byte(value), &fields); err != nil || fields["username"] != c.want {
				t.Fatalf("example secret %s (%v), want the username %s", value, err, c.want)
			}
			fields[gen["GenerateStringKey"].(string)] = "Aa1-example"
			b, _ := json.Marshal(fields)
			if _, err := directory.NewDriver(cfg).Parse(account.ParseRequest{Value: string(b)}); err != nil {
				t.Fatalf("the function refuses its example secret: %v", err)
			}
			if ex, _ := gen["ExcludeCharacters"].(string); !strings.Contains(ex, directory.DefaultExcludeCharacters) {
				t.Errorf("the example's first password may hold %q, which the function leaves out", directory.DefaultExcludeCharacters)
			}
		})
	}
}
