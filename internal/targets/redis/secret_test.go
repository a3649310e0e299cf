package redis_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
)

func TestParseSecret(t *testing.T) {
	s, err := redis.ParseSecret(`{"host":"Cache.internal","username":"app","password":"p","masterarn":"arn:m","extra":{"k":[1,2]}}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != redis.DefaultPort || !s.SSL || s.Strategy != account.SingleUser || s.Address() != "cache.internal:6379" {
		t.Fatalf("defaults: port %d, ssl %v, strategy %s, address %s", s.Port, s.SSL, s.Strategy, s.Address())
	}
	v, err := s.With("app_clone", `n<e>w"&`)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil || m["username"] != "app_clone" || m["password"] != `n<e>w"&` || m["masterarn"] != "arn:m" || m["extra"] == nil || strings.Contains(v, `\u003c`) {
		t.Fatalf("With: %s (%v)", v, err)
	}
	alt, err := redis.ParseSecret(`{"host":"h","port":"6380","username":"u","password":"p","masterarn":"m","strategy":"alternating-users","ssl":"false","engine":"Valkey"}`, false)
	if err != nil || alt.Strategy != account.AlternatingUsers || alt.Port != 6380 || alt.SSL {
		t.Fatalf("alternating: %+v %v", alt, err)
	}
	// A master secret may hold credentials only, and its masterarn and
	// strategy mean nothing.
	if m, err := redis.ParseSecret(`{"username":"admin","password":"p","strategy":"x"}`, true); err != nil || m.Address() != "" {
		t.Fatalf("master secret of credentials only: %v", err)
	}
	for value, want := range map[string]string{
		`[]`: "not a JSON object",
		`{"host":"h","password":"p","masterarn":"m"}`:                                                                `"username" is missing`,
		`{"host":"h","username":"u","masterarn":"m"}`:                                                                `"password" is missing`,
		`{"host":"h","username":"u","password":"p"}`:                                                                 `"masterarn" is missing`,
		`{"username":"u","password":"p","masterarn":"m"}`:                                                            `"host" is missing`,
		`{"host":"h","port":0,"username":"u","password":"p","masterarn":"m"}`:                                        `"port"`,
		`{"host":"h","ssl":"maybe","username":"u","password":"p","masterarn":"m"}`:                                   `"ssl"`,
		`{"host":"h","username":1,"password":"p","masterarn":"m"}`:                                                   `"username" must be a string`,
		`{"host":"h","username":"a\tb","password":"p","masterarn":"m"}`:                                              `"username" contains a space`,
		`{"host":"h/x","username":"u","password":"p","masterarn":"m"}`:                                               `"host" must be a host name`,
		`{"host":"h","username":"u","password":"p","masterarn":"m","ca_bundle":"../x"}`:                              `"ca_bundle"`,
		`{"host":"h","username":"u","password":"p","masterarn":"m","strategy":"both"}`:                               `"strategy"`,
		`{"host":"h","username":"u","password":"p","masterarn":"m","engine":"mysql"}`:                                `"engine"`,
		`{"host":"x.y.cache.amazonaws.com.cn","username":"u","password":"p","masterarn":"m"}`:                        `ElastiCache or MemoryDB endpoint`,
		`{"host":"clustercfg.c.abc.memorydb.eu-west-1.amazonaws.com","username":"u","password":"p","masterarn":"m"}`: `ElastiCache or MemoryDB endpoint`,
	} {
		_, err := redis.ParseSecret(value, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %s", value, err, want)
		}
		if err != nil && strings.Contains(err.Error(), `"p"`) {
			t.Errorf("%s: the error shows the password", value)
		}
	}
	// A host that only looks like AWS's is served.
	if _, err := redis.ParseSecret(`{"host":"cache.example.com","username":"u","password":"p","masterarn":"m"}`, false); err != nil {
		t.Errorf("cache.example.com: %v", err)
	}
}

func TestTwins(t *testing.T) {
	for user, want := range map[string]account.Twins{
		"app":       {Base: "app", Clone: "app_clone"},
		"app_clone": {Base: "app", Clone: "app_clone"},
	} {
		if got, err := (redis.Driver{}).Twins(account.TwinsRequest{Username: user}); err != nil || got != want {
			t.Errorf("Twins(%s) = %+v, %v", user, got, err)
		}
	}
	if _, err := (redis.Driver{}).Twins(account.TwinsRequest{Username: "_clone"}); err == nil {
		t.Error(`Twins("_clone") accepted a user with no base`)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"REDIS_PLAINTEXT_SERVERS": "cache.internal:6379", "REDIS_CONNECT_TIMEOUT": "2s"}
	c, err := redis.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || len(c.PlaintextServers) != 1 || c.ConnectTimeout.String() != "2s" || c.Password.ExcludeCharacters != redis.DefaultExcludeCharacters {
		t.Fatalf("%+v, %v", c, err)
	}
	for k, v := range map[string]string{"REDIS_PLAINTEXT_SERVERS": "cache.internal", "REDIS_CONNECT_TIMEOUT": "soon", "REDIS_CA_BUNDLE": "/no/such.pem", "PASSWORD_LENGTH": "4"} {
		if _, err := redis.ConfigFromEnv(func(n string) string { return map[string]string{k: v}[n] }); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want an error naming the variable", k, v, err)
		}
	}
}
