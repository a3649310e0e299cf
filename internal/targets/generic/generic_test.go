package generic

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/password"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func mustConfig(t *testing.T, m map[string]string) Config {
	t.Helper()
	c, err := ConfigFromEnv(env(m))
	if err != nil {
		t.Fatalf("ConfigFromEnv(%v): %v", m, err)
	}
	return c
}

// create runs Create over current and also checks that nothing it logged
// contains the old or the new secret.
func create(t *testing.T, cfg Config, current string) (string, error) {
	t.Helper()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	resp, err := New(cfg).Create(context.Background(), &rotation.CreateRequest{
		Secret:  rotation.Secret{ARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:test", Name: "test", Token: "tok"},
		Current: rotation.Version{ID: "v1", Value: current},
		Log:     log,
	})
	for _, s := range []string{current, resp.Value} {
		if len(s) >= 8 && strings.Contains(logs.String(), s) {
			t.Fatalf("a secret value appears in the logs: %s", logs.String())
		}
	}
	if err != nil && len(current) >= 8 && strings.Contains(err.Error(), current) {
		t.Fatalf("the current value appears in the error: %v", err)
	}
	return resp.Value, err
}

func TestCreateReplacesFieldKeepingTheRest(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"SECRET_FIELD": "password"})
	current := `{
  "username": "app",
  "password": "old-secret-value",
  "price": 1.50,
  "big": 12345678901234567890,
  "nested": { "a" : [1, 2.0, {"b": null}], "html": "<&>" },
  "flag": true
}`
	got, err := create(t, cfg, current)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	pw, ok := m["password"].(string)
	if !ok || len(pw) != 32 || pw == "old-secret-value" {
		t.Fatalf("password field not replaced by a new 32-character string")
	}
	// Everything but the replaced value is byte-identical.
	ref, err := findField(got, "password")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(current, `"old-secret-value"`, got[ref.start:ref.end], 1)
	if got != want {
		t.Fatalf("other bytes changed:\n got %s\nwant %s", got, want)
	}
}

func TestCreateAddsMissingField(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"SECRET_FIELD": "api_key", "SECRET_KIND": "apikey"})
	for _, current := range []string{`{"user":"x","n":1.50}`, `{}`, ` { } `, "{\n  \"a\": {\"b\": 2}\n}\n"} {
		got, err := create(t, cfg, current)
		if err != nil {
			t.Fatalf("%s: %v", current, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(got), &m); err != nil {
			t.Fatalf("%s: result is not JSON: %v", current, err)
		}
		var key string
		if err := json.Unmarshal(m["api_key"], &key); err != nil || len(key) != 43 {
			t.Fatalf("%s: api_key not added as a 32-byte base64url key", current)
		}
		if delete(m, "api_key"); len(m) > 0 {
			var old map[string]json.RawMessage
			_ = json.Unmarshal([]byte(current), &old)
			for k, v := range old {
				if !bytes.Equal(m[k], v) {
					t.Fatalf("%s: field %q changed from %s to %s", current, k, v, m[k])
				}
			}
		}
	}
}

func TestCreateFieldErrors(t *testing.T) {
	cfg := mustConfig(t, map[string]string{"SECRET_FIELD": "password"})
	tests := []struct {
		current string
		want    string
	}{
		{"plain-old-secret", "secret is not a JSON object but SECRET_FIELD=password is configured"},
		{`["old-secret-value"]`, "secret is not a JSON object but SECRET_FIELD=password is configured"},
		{`"old-secret-value"`, "secret is not a JSON object but SECRET_FIELD=password is configured"},
		{`null`, "secret is not a JSON object but SECRET_FIELD=password is configured"},
		{`{"password": "old-secret-value"`, "secret is not a JSON object but SECRET_FIELD=password is configured"},
		{`{"password": "old-secret-value"} {}`, "secret is not a JSON object but SECRET_FIELD=password is configured"},
		{`{"password": 123456789012}`, `field "password" of the secret is a JSON number, not a string`},
		{`{"password": {"v": "old-secret-value"}}`, `field "password" of the secret is a JSON object, not a string`},
		{`{"password": null}`, `field "password" of the secret is a JSON null, not a string`},
		{`{"password": "old-secret-value", "password": "old-secret-value2"}`, `field "password" appears more than once`},
	}
	for _, tt := range tests {
		_, err := create(t, cfg, tt.current)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.current, err, tt.want)
		}
	}
}

func TestCreateWholeValue(t *testing.T) {
	cfg := mustConfig(t, nil)
	// A password may well start with '{' without being JSON.
	for _, current := range []string{"old-secret-value", "{not json", `["a"]`, `"quoted"`} {
		got, err := create(t, cfg, current)
		if err != nil {
			t.Fatalf("%s: %v", current, err)
		}
		if len(got) != 32 || got == current {
			t.Fatalf("%s: whole value not replaced by a new 32-character password", current)
		}
	}
	_, err := create(t, cfg, ` {"user": "app", "password": "old-secret-value"}`)
	if err == nil || !strings.Contains(err.Error(), "SECRET_FIELD") {
		t.Fatalf("JSON object without SECRET_FIELD: error %v, want one telling to set SECRET_FIELD", err)
	}
}

func TestCreateNewValueDiffers(t *testing.T) {
	// One lowercase letter out of two: the same value comes up half of
	// the time, and Create must draw again. No function may be configured
	// with so short a password (PASSWORD_LENGTH is at least 8), so the
	// policy is set in code.
	cfg := mustConfig(t, nil)
	cfg.Password = password.Policy{Length: 1, ExcludeNumbers: true, ExcludePunctuation: true,
		ExcludeUppercase: true, ExcludeCharacters: "cdefghijklmnopqrstuvwxyz"}
	for range 200 {
		got, err := create(t, cfg, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got != "b" {
			t.Fatalf("got %q, want the only other value", got)
		}
	}
	// A single possible value cannot rotate.
	cfg.Password.ExcludeCharacters += "b"
	if _, err := create(t, cfg, "a"); err == nil {
		t.Fatal("no error when the only possible value is the current one")
	}
}

func TestCreateAPIKey(t *testing.T) {
	tests := []struct {
		env    map[string]string
		decode func(string) ([]byte, error)
		n      int
	}{
		{map[string]string{"SECRET_KIND": "apikey"}, base64.RawURLEncoding.DecodeString, 32},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_PREFIX": "sk_live_", "KEY_BYTES": "24", "KEY_ENCODING": "hex"}, hex.DecodeString, 24},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_PREFIX": "pk-", "KEY_BYTES": "16", "KEY_ENCODING": "base64"}, base64.StdEncoding.DecodeString, 16},
		{map[string]string{"SECRET_KIND": "signingkey"}, base64.StdEncoding.DecodeString, 64},
		{map[string]string{"SECRET_KIND": "signingkey", "KEY_BYTES": "32", "KEY_ENCODING": "base64url"}, base64.RawURLEncoding.DecodeString, 32},
	}
	for _, tt := range tests {
		cfg := mustConfig(t, tt.env)
		got, err := create(t, cfg, "old-secret-value")
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		prefix := tt.env["KEY_PREFIX"]
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("%v: key lacks prefix %q", tt.env, prefix)
		}
		b, err := tt.decode(strings.TrimPrefix(got, prefix))
		if err != nil {
			t.Fatalf("%v: key does not decode: %v", tt.env, err)
		}
		if len(b) != tt.n {
			t.Fatalf("%v: key has %d bytes, want %d", tt.env, len(b), tt.n)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := mustConfig(t, nil)
	if c.Kind != KindPassword || c.Password.Length != 32 || !c.Password.RequireEachIncludedType || c.Field != "" || c.VerifyURL != nil {
		t.Fatalf("defaults: %+v", c)
	}
	c = mustConfig(t, map[string]string{"SECRET_KIND": "apikey"})
	if c.KeyBytes != 32 || c.KeyEncoding != "base64url" || c.KeyPrefix != "" {
		t.Fatalf("apikey defaults: %+v", c)
	}
	c = mustConfig(t, map[string]string{"SECRET_KIND": "signingkey"})
	if c.KeyBytes != 64 || c.KeyEncoding != "base64" {
		t.Fatalf("signingkey defaults: %+v", c)
	}
	c = mustConfig(t, map[string]string{"VERIFY_URL": "https://api.example.com/v1/me?token=abc"})
	if c.VerifyMethod != "GET" || c.VerifyHeader != "" || c.VerifyTimeout != 5*time.Second {
		t.Fatalf("verify defaults: %+v", c)
	}
	for _, a := range c.Describe() {
		if strings.Contains(a.Value.String(), "abc") {
			t.Fatalf("Describe leaks the URL query: %v", a)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SECRET_KIND": "token"}, `SECRET_KIND="token" is not one of password, apikey, signingkey`},
		{map[string]string{"PASSWORD_LENGTH": "0"}, "PASSWORD_LENGTH"},
		{map[string]string{"PASSWORD_LENGTH": "7"}, "PASSWORD_LENGTH must be between 8 and 4096"},
		{map[string]string{"EXCLUDE_NUMBERS": "nope"}, `EXCLUDE_NUMBERS="nope"`},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_BYTES": "15"}, "KEY_BYTES must be between 16 and 1024"},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_BYTES": "1025"}, "KEY_BYTES must be between 16 and 1024"},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_BYTES": "lots"}, `KEY_BYTES="lots"`},
		{map[string]string{"SECRET_KIND": "signingkey", "KEY_BYTES": "31"}, "KEY_BYTES must be between 32 and 1024"},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_ENCODING": "base32"}, `"base32"`},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_PREFIX": "sk live"}, "KEY_PREFIX"},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_PREFIX": "sk_é_"}, "KEY_PREFIX"},
		{map[string]string{"SECRET_KIND": "apikey", "KEY_PREFIX": strings.Repeat("p", 65)}, "KEY_PREFIX"},
		{map[string]string{"SECRET_KIND": "signingkey", "KEY_PREFIX": "hs_"}, "KEY_PREFIX"},
		{map[string]string{"VERIFY_URL": "http://api.example.com/me"}, "https"},
		{map[string]string{"VERIFY_URL": "/me"}, "https"},
		{map[string]string{"VERIFY_URL": "https:///me"}, "https"},
		{map[string]string{"VERIFY_URL": "https://user:pw@api.example.com/me"}, "user information"},
		{map[string]string{"VERIFY_URL": "https://api.example.com", "VERIFY_METHOD": "PUT"}, `VERIFY_METHOD="PUT"`},
		{map[string]string{"VERIFY_URL": "https://api.example.com", "VERIFY_HEADER": "X Api Key"}, "VERIFY_HEADER"},
		{map[string]string{"VERIFY_URL": "https://api.example.com", "VERIFY_TIMEOUT": "5"}, "VERIFY_TIMEOUT"},
		{map[string]string{"VERIFY_URL": "https://api.example.com", "VERIFY_TIMEOUT": "-1s"}, "VERIFY_TIMEOUT"},
		{map[string]string{"VERIFY_URL": "https://api.example.com", "VERIFY_CA_FILE": filepath.Join(dir, "missing.pem")}, "VERIFY_CA_FILE"},
		{map[string]string{"VERIFY_URL": "https://api.example.com", "VERIFY_CA_FILE": notPEM}, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		_, err := ConfigFromEnv(env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one containing %q", tt.env, err, tt.want)
		}
	}
	if c := mustConfig(t, map[string]string{"PASSWORD_LENGTH": "12", "KEY_PREFIX": "ignored for passwords"}); c.KeyPrefix != "" {
		t.Errorf("KEY_PREFIX read for a password")
	}
}

func TestSetAndTestWithoutVerifyDoNothing(t *testing.T) {
	tg := New(mustConfig(t, nil))
	// A nil Versions would panic if either step read a version.
	req := &rotation.StepRequest{Secret: rotation.Secret{Name: "test"}}
	if err := tg.Set(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := tg.Test(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

// verifyServer is a TLS server that records what the last request carried
// and answers with status (or redirects when status is a 3xx).
type verifyServer struct {
	*httptest.Server
	status int
	got    http.Header
	method string
	caFile string
}

func newVerifyServer(t *testing.T, status int) *verifyServer {
	t.Helper()
	s := &verifyServer{status: status}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			// Reaching this means a redirect was followed.
			t.Error("redirect was followed")
			return
		}
		s.got, s.method = r.Header.Clone(), r.Method
		if s.status >= 300 && s.status < 400 {
			http.Redirect(w, r, "/elsewhere", s.status)
			return
		}
		w.WriteHeader(s.status)
		// A careless server might echo the credential.
		_, _ = w.Write([]byte("you sent " + r.Header.Get("Authorization") + r.Header.Get("X-Api-Key")))
	}))
	// Handshakes that the client refuses on purpose would spam the output.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(s.caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *verifyServer) target(t *testing.T, extra map[string]string) *Target {
	t.Helper()
	m := map[string]string{"VERIFY_URL": s.URL + "/v1/me?q=1", "VERIFY_CA_FILE": s.caFile}
	for k, v := range extra {
		m[k] = v
	}
	return New(mustConfig(t, m))
}

const pendingValue = "pending-secret-Value!123"

func TestVerifyBearer(t *testing.T) {
	s := newVerifyServer(t, http.StatusNoContent)
	if err := s.target(t, nil).verifyPending(context.Background(), pendingValue); err != nil {
		t.Fatal(err)
	}
	if got := s.got.Get("Authorization"); got != "Bearer "+pendingValue {
		t.Fatalf("Authorization header not the bearer value")
	}
	if s.method != http.MethodGet {
		t.Fatalf("method %s, want GET", s.method)
	}
}

func TestVerifyCustomHeader(t *testing.T) {
	s := newVerifyServer(t, http.StatusOK)
	tg := s.target(t, map[string]string{"VERIFY_HEADER": "X-Api-Key", "VERIFY_METHOD": "post"})
	if err := tg.verifyPending(context.Background(), pendingValue); err != nil {
		t.Fatal(err)
	}
	if s.got.Get("X-Api-Key") != pendingValue {
		t.Fatal("X-Api-Key header does not carry the raw value")
	}
	if s.got.Get("Authorization") != "" {
		t.Fatal("Authorization header sent although VERIFY_HEADER is set")
	}
	if s.method != http.MethodPost {
		t.Fatalf("method %s, want POST", s.method)
	}
}

func TestVerifyField(t *testing.T) {
	s := newVerifyServer(t, http.StatusOK)
	tg := s.target(t, map[string]string{"SECRET_FIELD": "key", "VERIFY_METHOD": "HEAD"})
	if err := tg.verifyPending(context.Background(), `{"user":"u","key":"`+pendingValue+`"}`); err != nil {
		t.Fatal(err)
	}
	if s.got.Get("Authorization") != "Bearer "+pendingValue {
		t.Fatal("the field value was not sent")
	}
	for _, pending := range []string{`{"user":"u"}`, pendingValue, `{"key":1}`} {
		err := tg.verifyPending(context.Background(), pending)
		if err == nil || strings.Contains(err.Error(), pendingValue) {
			t.Errorf("%s: error %v, want one without the value", pending, err)
		}
	}
}

func TestVerifyRejected(t *testing.T) {
	s := newVerifyServer(t, http.StatusUnauthorized)
	err := s.target(t, nil).verifyPending(context.Background(), pendingValue)
	if err == nil {
		t.Fatal("401 accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "401") || !strings.Contains(msg, s.URL+"/v1/me") {
		t.Fatalf("error %q does not name the status and the URL", msg)
	}
	if strings.Contains(msg, pendingValue) || strings.Contains(msg, "you sent") || strings.Contains(msg, "q=1") {
		t.Fatalf("error %q leaks the value, the body or the query", msg)
	}
}

func TestVerifyRedirectRefused(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		s := newVerifyServer(t, status)
		err := s.target(t, nil).verifyPending(context.Background(), pendingValue)
		if err == nil || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%d: error %v, want a refused redirect", status, err)
		}
	}
}

func TestVerifyUntrustedCertificate(t *testing.T) {
	s := newVerifyServer(t, http.StatusOK)
	tg := New(mustConfig(t, map[string]string{"VERIFY_URL": s.URL}))
	err := tg.verifyPending(context.Background(), pendingValue)
	if err == nil || strings.Contains(err.Error(), pendingValue) {
		t.Fatalf("self-signed server without VERIFY_CA_FILE: error %v", err)
	}
	if s.got != nil {
		t.Fatal("the value reached an untrusted server")
	}
}

func TestVerifyTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := New(mustConfig(t, map[string]string{"VERIFY_URL": srv.URL, "VERIFY_CA_FILE": ca, "VERIFY_TIMEOUT": "100ms"}))
	start := time.Now()
	if err := tg.verifyPending(context.Background(), pendingValue); err == nil {
		t.Fatal("no error from a server that never answers")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout of 100ms took %v", d)
	}
}

func TestVerifyRefusesHeaderBreakingValue(t *testing.T) {
	s := newVerifyServer(t, http.StatusOK)
	err := s.target(t, nil).verifyPending(context.Background(), "abc\r\nX-Evil: 1")
	if err == nil || strings.Contains(err.Error(), "Evil") {
		t.Fatalf("error %v, want a refusal without the value", err)
	}
	if s.got != nil {
		t.Fatal("request sent")
	}
}

func TestNewWithUnloadableCAFile(t *testing.T) {
	// A Config built by hand skips ConfigFromEnv's check; Test must fail
	// rather than fall back to the system roots silently.
	cfg := mustConfig(t, map[string]string{"VERIFY_URL": "https://api.example.com"})
	cfg.VerifyCAFile = filepath.Join(t.TempDir(), "missing.pem")
	if err := New(cfg).verifyPending(context.Background(), pendingValue); err == nil || !strings.Contains(err.Error(), "VERIFY_CA_FILE") {
		t.Fatalf("error %v, want one naming VERIFY_CA_FILE", err)
	}
}
