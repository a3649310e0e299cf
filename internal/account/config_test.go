package account

import (
	"strings"
	"testing"
)

func TestConfigFromEnvValidatesTheMasterSettings(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	names := EnvNames{CABundle: "X_CA_BUNDLE", ConnectTimeout: "X_CONNECT_TIMEOUT", ExcludeCharacters: "@"}
	c, err := ConfigFromEnv(env(map[string]string{
		"MASTER_ALLOWED_SERVERS": " DB.example.com:5432, [::1]:3306 ,",
		"MASTER_ALLOWED_USERS":   "app, report_*",
		"LAMBDA_TASK_ROOT":       "/var/task",
		"X_CONNECT_TIMEOUT":      "2s",
	}), names)
	if err != nil {
		t.Fatal(err)
	}
	if !c.masterMayUse(Location{Host: "db.EXAMPLE.com", Port: 5432}) || !c.masterMayUse(Location{Host: "::1", Port: 3306}) || c.masterMayUse(Location{Host: "db.example.com", Port: 5433}) {
		t.Fatalf("allowed servers %v", c.MasterAllowedServers)
	}
	for user, want := range map[string]bool{"app": true, "apps": false, "report_x": true, "report_": true, "reporting": false} {
		if c.masterMaySet(user) != want {
			t.Errorf("masterMaySet(%q) = %v", user, !want)
		}
	}
	if c.BundleDir != "/var/task" || c.ConnectTimeout.String() != "2s" || c.Password.ExcludeCharacters != "@" {
		t.Errorf("BundleDir %q (want $LAMBDA_TASK_ROOT), timeout %v, exclude %q", c.BundleDir, c.ConnectTimeout, c.Password.ExcludeCharacters)
	}
	if d := DefaultConfig(names); !d.masterMaySet("anyone") || d.masterMayUse(Location{Host: "localhost", Port: 5432}) || d.BundleDir == "" || d.ConnectTimeout != DefaultConnectTimeout {
		t.Errorf("default: every user, no server, the executable's directory; got %+v", d)
	}
	for k, v := range map[string]string{
		"MASTER_ALLOWED_SERVERS": "db.example.com",
		"MASTER_ALLOWED_USERS":   "*",
		"X_CONNECT_TIMEOUT":      "-1s",
		"X_CA_BUNDLE":            "/no/such/file.pem",
	} {
		_, err := ConfigFromEnv(env(map[string]string{k: v}), names)
		if err == nil || !strings.HasPrefix(err.Error(), k) {
			t.Errorf("%s=%q: %v, want an error naming the variable", k, v, err)
		}
	}
	for _, v := range []string{"db:0", "db:x", ":5432", "db:70000"} {
		if _, err := ConfigFromEnv(env(map[string]string{"MASTER_ALLOWED_SERVERS": v}), names); err == nil {
			t.Errorf("MASTER_ALLOWED_SERVERS=%q accepted", v)
		}
	}
	for _, v := range []string{"a b", "a*b", "**"} {
		if _, err := ConfigFromEnv(env(map[string]string{"MASTER_ALLOWED_USERS": v}), names); err == nil {
			t.Errorf("MASTER_ALLOWED_USERS=%q accepted", v)
		}
	}
}

func TestConfigFromEnvPlaintextServers(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	at := func(host string, port int) Location { return Location{Host: host, Port: port, Plaintext: true} }
	// A family without the variable: the databases' rule, unchanged.
	c, err := ConfigFromEnv(env(map[string]string{"X_PLAINTEXT_SERVERS": "cache:6379"}), EnvNames{})
	if err != nil || c.PlaintextServers != nil || !c.plaintextAllowed(at("anywhere", 1)) {
		t.Fatalf("without EnvNames.PlaintextServers: %v, %v", c.PlaintextServers, err)
	}
	names := EnvNames{PlaintextServers: "X_PLAINTEXT_SERVERS"}
	if c := DefaultConfig(names); c.plaintextAllowed(at("cache", 6379)) {
		t.Fatal("an empty X_PLAINTEXT_SERVERS allows plaintext")
	}
	c, err = ConfigFromEnv(env(map[string]string{"X_PLAINTEXT_SERVERS": "Cache.internal:6379"}), names)
	if err != nil {
		t.Fatal(err)
	}
	if !c.plaintextAllowed(at("cache.INTERNAL", 6379)) || c.plaintextAllowed(at("cache.internal", 6380)) || c.plaintextAllowed(at("other", 6379)) {
		t.Fatalf("plaintext servers %v", c.PlaintextServers)
	}
	if _, err := ConfigFromEnv(env(map[string]string{"X_PLAINTEXT_SERVERS": "cache"}), names); err == nil || !strings.HasPrefix(err.Error(), "X_PLAINTEXT_SERVERS") {
		t.Fatalf("X_PLAINTEXT_SERVERS=cache: %v, want an error naming the variable", err)
	}
}
