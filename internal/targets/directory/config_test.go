package directory

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
)

// env is a function environment for ConfigFromEnv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func (e env) with(kv ...string) env {
	out := maps.Clone(e)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

var (
	ldapEnv = env{
		"DIRECTORY_KIND":             "ldap",
		"DIRECTORY_URL":              "ldaps://ldap.example.com",
		"DIRECTORY_ALLOWED_BASE_DNS": "ou=services,dc=example,dc=com; ou=batch\\;jobs,dc=example,dc=com",
		"LAMBDA_TASK_ROOT":           "/var/task",
	}
	adEnv = env{
		"DIRECTORY_KIND":             "activedirectory",
		"DIRECTORY_URL":              "ldaps://DC1.corp.example.com:636",
		"DIRECTORY_ALLOWED_BASE_DNS": "OU=ServiceAccounts,DC=corp,DC=example,DC=com",
		"DIRECTORY_KERBEROS_REALM":   "CORP.EXAMPLE.COM",
		"LAMBDA_TASK_ROOT":           "/var/task",
	}
)

func mustConfig(t *testing.T, e env) Config {
	t.Helper()
	c, err := ConfigFromEnv(e.get)
	if err != nil {
		t.Fatalf("ConfigFromEnv: %v", err)
	}
	return c
}

func TestConfigFromEnv(t *testing.T) {
	c := mustConfig(t, ldapEnv)
	if c.Kind != LDAP || c.Host != "ldap.example.com" || c.Port != 636 || c.Security != LDAPS || c.AllowPlaintext || c.CloneSuffix != "_clone" {
		t.Fatalf("LDAP defaults: %+v", c)
	}
	if len(c.BaseDNs) != 2 || c.BaseDNs[1] != `ou=batch\;jobs,dc=example,dc=com` {
		t.Fatalf("base DNs %q: want two, the second with its escaped ';'", c.BaseDNs)
	}
	if c.Password.ExcludeCharacters != DefaultExcludeCharacters || c.ConnectTimeout != account.DefaultConnectTimeout {
		t.Fatalf("password policy or timeout defaults: %+v", c.Config)
	}
	c = mustConfig(t, ldapEnv.with("DIRECTORY_URL", "ldap://ldap.example.com", "DIRECTORY_ALLOW_PLAINTEXT", "true"))
	if c.Security != StartTLS || c.Port != 389 || !c.AllowPlaintext {
		t.Fatalf("ldap:// with plaintext allowed: %+v", c)
	}
	c = mustConfig(t, adEnv)
	if c.Kind != ActiveDirectory || c.Host != "DC1.corp.example.com" || c.Kerberos.Realm != "CORP.EXAMPLE.COM" ||
		len(c.Kerberos.KDCs) != 1 || c.Kerberos.KDCs[0] != "DC1.corp.example.com:88" {
		t.Fatalf("AD defaults: %+v", c)
	}
	c = mustConfig(t, adEnv.with("DIRECTORY_KERBEROS_KDCS", "dc1:88, dc2:88", "DIRECTORY_CLONE_SUFFIX", "-b", "DIRECTORY_TIMEOUT", "2s"))
	if len(c.Kerberos.KDCs) != 2 || c.CloneSuffix != "-b" || c.ConnectTimeout.Seconds() != 2 {
		t.Fatalf("AD settings: %+v", c)
	}
	if d := c.Describe(); len(d) < 10 {
		t.Fatalf("Describe gives %d attributes", len(d))
	}
}

// Every bad setting is refused with an error that names the variable.
func TestConfigFromEnvRefusals(t *testing.T) {
	for _, c := range []struct {
		env      env
		variable string
	}{
		{ldapEnv.with("DIRECTORY_KIND", ""), "DIRECTORY_KIND"},
		{ldapEnv.with("DIRECTORY_KIND", "novell"), "DIRECTORY_KIND"},
		{ldapEnv.with("DIRECTORY_URL", ""), "DIRECTORY_URL"},
		{ldapEnv.with("DIRECTORY_URL", "https://ldap.example.com"), "DIRECTORY_URL"},
		{ldapEnv.with("DIRECTORY_URL", "ldaps://admin:pw@ldap.example.com"), "DIRECTORY_URL"},
		{ldapEnv.with("DIRECTORY_URL", "ldaps://ldap.example.com/dc=example"), "DIRECTORY_URL"},
		{ldapEnv.with("DIRECTORY_URL", "ldaps://ldap.example.com:99999"), "DIRECTORY_URL"},
		{ldapEnv.with("DIRECTORY_URL", "ldaps://:636"), "DIRECTORY_URL"},
		{ldapEnv.with("DIRECTORY_ALLOWED_BASE_DNS", ""), "DIRECTORY_ALLOWED_BASE_DNS"},
		{ldapEnv.with("DIRECTORY_ALLOWED_BASE_DNS", "not a dn"), "DIRECTORY_ALLOWED_BASE_DNS"},
		{ldapEnv.with("DIRECTORY_ALLOWED_BASE_DNS", " ; "), "DIRECTORY_ALLOWED_BASE_DNS"},
		{ldapEnv.with("DIRECTORY_ALLOW_PLAINTEXT", "yes please"), "DIRECTORY_ALLOW_PLAINTEXT"},
		{ldapEnv.with("DIRECTORY_ALLOW_PLAINTEXT", "true"), "DIRECTORY_ALLOW_PLAINTEXT"}, // with ldaps://
		{adEnv.with("DIRECTORY_URL", "ldap://dc1", "DIRECTORY_ALLOW_PLAINTEXT", "true"), "DIRECTORY_ALLOW_PLAINTEXT"},
		{ldapEnv.with("DIRECTORY_CLONE_SUFFIX", "_clone,ou=x"), "DIRECTORY_CLONE_SUFFIX"},
		{ldapEnv.with("DIRECTORY_KERBEROS_REALM", "EXAMPLE.COM"), "DIRECTORY_KERBEROS_REALM"},
		{ldapEnv.with("MASTER_ALLOWED_SERVERS", "evil.example.com:636"), "MASTER_ALLOWED_SERVERS"},
		{ldapEnv.with("DIRECTORY_TIMEOUT", "soon"), "DIRECTORY_TIMEOUT"},
		{adEnv.with("DIRECTORY_KERBEROS_REALM", ""), "DIRECTORY_KERBEROS_REALM"},
		{adEnv.with("DIRECTORY_KERBEROS_REALM", "A\n[realms]"), "DIRECTORY_KERBEROS_REALM"},
		{adEnv.with("DIRECTORY_KERBEROS_KDCS", "dc1 }\n kdc = evil"), "DIRECTORY_KERBEROS_KDCS"},
		{adEnv.with("DIRECTORY_URL", "ldap://dc1.corp.example.com"), "DIRECTORY_URL"}, // AD: LDAPS only
		{adEnv.with("EXCLUDE_PUNCTUATION", "true", "EXCLUDE_NUMBERS", "true"), "EXCLUDE_"},
		{adEnv.with("REQUIRE_EACH_INCLUDED_TYPE", "false"), "REQUIRE_EACH_INCLUDED_TYPE"},
		{adEnv.with("PASSWORD_LENGTH", "300"), "PASSWORD_LENGTH"},
		{ldapEnv.with("PASSWORD_LENGTH", "7"), "PASSWORD_LENGTH"},
	} {
		_, err := ConfigFromEnv(c.env.get)
		if err == nil || !strings.Contains(err.Error(), c.variable) {
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.variable)
		}
	}
	// Two of AD's categories are enough for an RFC 4511 directory.
	mustConfig(t, ldapEnv.with("EXCLUDE_PUNCTUATION", "true", "EXCLUDE_NUMBERS", "true"))
}

// The default policy always meets AD's complexity rule: every password has
// an upper-case letter, a lower-case letter, a digit and punctuation.
func TestDefaultPasswordsMeetADComplexity(t *testing.T) {
	c := mustConfig(t, adEnv)
	for range 200 {
		p, err := c.Password.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 32 || !strings.ContainsAny(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || !strings.ContainsAny(p, "abcdefghijklmnopqrstuvwxyz") ||
			!strings.ContainsAny(p, "0123456789") || strings.ContainsAny(p, DefaultExcludeCharacters+" ") ||
			!strings.ContainsFunc(p, func(r rune) bool { return strings.ContainsRune("!#$%&()*+,-./:;<=>?@[]^_{|}~", r) }) {
			t.Fatalf("generated password of shape %d characters misses a class or holds an excluded character", len(p))
		}
	}
}

func parse(t *testing.T, d *Driver, master bool, fields map[string]any) (account.Account, error) {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return d.Parse(account.ParseRequest{Value: string(b), Master: master})
}

func TestParse(t *testing.T) {
	d := NewDriver(mustConfig(t, ldapEnv.with("DIRECTORY_URL", "ldap://ldap.example.com", "DIRECTORY_ALLOW_PLAINTEXT", "true")))
	user := "uid=svc-app,ou=services,dc=example,dc=com"
	a, err := parse(t, d, false, map[string]any{"username": user, "password": "pw-1", "host": "LDAP.example.com", "port": "389", "extra": 1})
	if err != nil {
		t.Fatal(err)
	}
	if a.Username != user || a.Password != "pw-1" || a.Strategy != account.SingleUser || a.MasterARN != "" || a.Server != "starttls ldap.example.com:389" {
		t.Fatalf("single account: %+v", a)
	}
	a, err = parse(t, d, false, map[string]any{"username": user, "password": "x", "masterarn": "arn:m"})
	if err != nil || a.Strategy != account.AlternatingUsers || a.MasterARN != "arn:m" {
		t.Fatalf("with masterarn: %+v, %v", a, err)
	}
	a, err = parse(t, d, false, map[string]any{"username": user, "password": "x", "masterarn": "arn:m", "strategy": "single"})
	if err != nil || a.Strategy != account.SingleUser || a.MasterARN != "arn:m" {
		t.Fatalf("single account set by the master: %+v, %v", a, err)
	}
	a, err = parse(t, d, false, map[string]any{"username": user, "password": "x", "security": "plaintext"})
	if err != nil || a.Server != "plaintext ldap.example.com:389" {
		t.Fatalf("plaintext allowed: %+v, %v", a, err)
	}
	loc, err := d.Locate(t.Context(), account.LocateRequest{Account: a})
	if err != nil || !loc.Plaintext || loc.Host != "ldap.example.com" || loc.Port != 389 {
		t.Fatalf("plaintext location: %+v, %v", loc, err)
	}
	// A master secret's account may lie anywhere; its masterarn means
	// nothing.
	a, err = parse(t, d, true, map[string]any{"username": "cn=rotator,ou=system,dc=example,dc=com", "password": "x", "masterarn": "arn:other"})
	if err != nil || a.Strategy != account.SingleUser || a.MasterARN != "" || a.Server != "starttls ldap.example.com:389" {
		t.Fatalf("master secret: %+v, %v", a, err)
	}

	for _, c := range []struct {
		fields map[string]any
		master bool
		want   string
	}{
		{map[string]any{"username": user, "password": "secret-pw", "host": "evil.example.com"}, false, `"host" names "evil.example.com"`},
		{map[string]any{"username": "cn=rotator,dc=example,dc=com", "password": "secret-pw", "host": "evil.example.com"}, true, `"host"`},
		{map[string]any{"username": user, "password": "secret-pw", "port": 636}, false, `"port" names 636`},
		{map[string]any{"username": user, "password": "secret-pw", "port": "x"}, false, `"port" must be a number`},
		{map[string]any{"username": user, "password": "secret-pw", "security": "ldaps"}, false, `"security" asks for ldaps`},
		{map[string]any{"username": user, "password": "secret-pw", "security": "none"}, false, `"security" is "none"`},
		{map[string]any{"username": "svc-app", "password": "secret-pw"}, false, `"username" is not a distinguished name`},
		{map[string]any{"username": "uid=victim,ou=people,dc=example,dc=com", "password": "secret-pw"}, false, "not below DIRECTORY_ALLOWED_BASE_DNS"},
		{map[string]any{"username": "ou=services,dc=example,dc=com", "password": "secret-pw"}, false, "not below DIRECTORY_ALLOWED_BASE_DNS"},
		{map[string]any{"username": "uid=x,ou=services,dc=example,dc=org", "password": "secret-pw"}, false, "not below DIRECTORY_ALLOWED_BASE_DNS"},
		{map[string]any{"username": user}, false, `"password" is missing`},
		{map[string]any{"username": user, "password": 5}, false, `"password" must be a string`},
		{map[string]any{"password": "secret-pw"}, false, `"username"`},
		{map[string]any{"username": user, "password": "secret-pw", "strategy": "both"}, false, `"strategy"`},
		{map[string]any{"username": user, "password": "secret-pw", "ca_bundle": "/etc/passwd"}, false, `"ca_bundle"`},
	} {
		_, err := parse(t, d, c.master, c.fields)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.fields, err, c.want)
		} else if strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if _, err := d.Parse(account.ParseRequest{Value: "not json"}); err == nil {
		t.Error("a value that is not JSON was accepted")
	}

	// Without DIRECTORY_ALLOW_PLAINTEXT a secret cannot ask for plaintext.
	strict := NewDriver(mustConfig(t, ldapEnv.with("DIRECTORY_URL", "ldap://ldap.example.com")))
	_, err = parse(t, strict, false, map[string]any{"username": user, "password": "x", "security": "plaintext"})
	if !errors.Is(err, ErrPlaintextRefused) || !strings.Contains(err.Error(), `"security"`) {
		t.Fatalf("plaintext not allowed: %v", err)
	}
}

func TestTwins(t *testing.T) {
	d := NewDriver(mustConfig(t, ldapEnv))
	for user, want := range map[string]account.Twins{
		"uid=svc-app,ou=services,dc=example,dc=com":        {Base: "uid=svc-app,ou=services,dc=example,dc=com", Clone: "uid=svc-app_clone,ou=services,dc=example,dc=com"},
		"uid=svc-app_clone,ou=services,dc=example,dc=com":  {Base: "uid=svc-app,ou=services,dc=example,dc=com", Clone: "uid=svc-app_clone,ou=services,dc=example,dc=com"},
		`cn=Smith\, J,ou=services,dc=example,dc=com`:       {Base: `cn=Smith\, J,ou=services,dc=example,dc=com`, Clone: `cn=Smith\, J_clone,ou=services,dc=example,dc=com`},
		"uid=_clone,ou=services,dc=example,dc=com":         {Base: "uid=_clone,ou=services,dc=example,dc=com", Clone: "uid=_clone_clone,ou=services,dc=example,dc=com"},
		"CN=svc app;OU=ServiceAccounts;DC=example;DC=com":  {Base: "CN=svc app;OU=ServiceAccounts;DC=example;DC=com", Clone: "CN=svc app_clone;OU=ServiceAccounts;DC=example;DC=com"},
		"uid=svc-app_clone_clone,ou=services,dc=example,x": {Base: "uid=svc-app_clone,ou=services,dc=example,x", Clone: "uid=svc-app_clone_clone,ou=services,dc=example,x"},
	} {
		got, err := d.Twins(account.TwinsRequest{Username: user})
		if err != nil || got != want {
			t.Errorf("Twins(%s) = %+v, %v; want %+v", user, got, err, want)
		}
	}
	for _, user := range []string{
		"cn=a+uid=b,ou=services,dc=example,dc=com", // multi-valued RDN
		"uid=svc ,ou=services,dc=example,dc=com",   // trailing space
		`uid=svc\ ,ou=services,dc=example,dc=com`,  // trailing escape
		"svc",
	} {
		if tw, err := d.Twins(account.TwinsRequest{Username: user}); err == nil {
			t.Errorf("Twins(%q) = %+v, want a refusal", user, tw)
		}
	}
	ad := NewDriver(mustConfig(t, adEnv))
	long := "CN=" + strings.Repeat("a", 60) + ",OU=ServiceAccounts,DC=corp,DC=example,DC=com"
	if _, err := ad.Twins(account.TwinsRequest{Username: long}); err == nil || !strings.Contains(err.Error(), "64") {
		t.Fatalf("AD clone cn of 66 characters: %v, want a refusal naming the limit", err)
	}
}

func TestNewValueKeepsOtherFields(t *testing.T) {
	d := NewDriver(mustConfig(t, ldapEnv))
	a, err := d.Parse(account.ParseRequest{Value: `{"username":"uid=a,ou=services,dc=example,dc=com","password":"old","note":"\u003ckept & as is>","n":1.50}`})
	if err != nil {
		t.Fatal(err)
	}
	v, err := d.NewValue(account.NewValueRequest{Account: a, Username: "uid=a_clone,ou=services,dc=example,dc=com", Password: `new"<&>`})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(v), &got); err != nil {
		t.Fatal(err)
	}
	if got["username"] != "uid=a_clone,ou=services,dc=example,dc=com" || got["password"] != `new"<&>` || got["note"] != "<kept & as is>" || !strings.Contains(v, `"n":1.50`) || !strings.Contains(v, `"\u003ckept & as is>"`) {
		t.Fatalf("new value %s", v)
	}
}
