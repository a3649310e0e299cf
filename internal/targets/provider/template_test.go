package provider

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestPointer(t *testing.T) {
	doc, err := decodeJSON([]byte(`{"data":{"key":"sk_1","id":42,"a/b":{"~x":"y"}},"items":[{"name":"n0"},{"name":"n1"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for ptr, want := range map[string]string{
		"/data/key":      "sk_1",
		"/data/id":       "42",
		"/data/a~1b/~0x": "y",
		"/items/1/name":  "n1",
	} {
		p, err := parsePointer(ptr)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := p.resolveString(doc); !ok || got != want {
			t.Errorf("%s = %q %v, want %q", ptr, got, ok, want)
		}
	}
	for _, ptr := range []string{"/data/nope", "/items/2/name", "/items/01/name", "/items/x", "/data"} {
		p, _ := parsePointer(ptr)
		if got, ok := p.resolveString(doc); ok {
			t.Errorf("%s resolved to %q", ptr, got)
		}
	}
	for _, bad := range []string{"data", "/a~2"} {
		if _, err := parsePointer(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTemplateEscaping(t *testing.T) {
	vs := vars{}
	vs.set("key_id", "../admin/users?all=1#x", false)
	tp, err := parseTemplate("/v1/keys/{{key_id}}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.render(vs, escPath)
	if err != nil {
		t.Fatal(err)
	}
	if got != "/v1/keys/..%2Fadmin%2Fusers%3Fall=1%23x" {
		t.Errorf("path = %q: a key id must stay one segment", got)
	}
	for _, id := range []string{"..", ".", ""} {
		vs.set("key_id", id, false)
		if _, err := tp.render(vs, escPath); err == nil {
			t.Errorf("key id %q accepted as a path segment", id)
		}
	}
	vs.set("key", "abc\r\nX-Evil: 1", true)
	h, _ := parseTemplate("Bearer {{key}}")
	if _, err := h.render(vs, escHeader); err == nil || strings.Contains(err.Error(), "Evil") {
		t.Errorf("header injection: %v", err)
	}
	if _, err := h.render(vars{}, escHeader); err == nil || !strings.Contains(err.Error(), "{{key}}") {
		t.Errorf("a missing variable: %v", err)
	}
}

func TestRabbitMQHash(t *testing.T) {
	vs := vars{}
	vs.set("key", "s3cret-pw", true)
	tp, err := parseTemplate("{{key|rabbitmq_sha256}}")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.render(vs, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.StdEncoding.DecodeString(got)
	if err != nil || len(b) != 36 {
		t.Fatalf("hash %q is not base64 of salt and SHA-256", got)
	}
	sum := sha256.Sum256(append(append([]byte(nil), b[:4]...), "s3cret-pw"...))
	if string(b[4:]) != string(sum[:]) || strings.Contains(got, "s3cret") {
		t.Error("not SHA-256(salt ‖ password)")
	}
}

func TestKeyPattern(t *testing.T) {
	tp, err := keyTemplate("rotation-{{secret_hash}}-{{token}}", nil)
	if err != nil {
		t.Fatal(err)
	}
	vs := vars{}
	vs.set("secret_hash", "0123456789ab", false)
	re, err := tp.pattern(vs)
	if err != nil {
		t.Fatal(err)
	}
	tok := "6f1c2a3b-4d5e-4f60-8a71-92b3c4d5e6f7"
	if m := re.FindStringSubmatch("rotation-0123456789ab-" + tok); m == nil || m[1] != tok {
		t.Errorf("own name not recognised: %v", m)
	}
	for _, other := range []string{"rotation-ffffffffffff-" + tok, "rotation-0123456789ab-short", "x-rotation-0123456789ab-" + tok, "admin"} {
		if re.MatchString(other) {
			t.Errorf("%q taken for this secret's key", other)
		}
	}
}

func TestRedact(t *testing.T) {
	key := "sk_test_4f1c2a3b4d5e4f608a7192b3c4d5e6f7aa"
	admin := "adm_0011223344556677"
	body := `{"error":"invalid api key: ` + key + `","auth":"Bearer ` + admin + `","basic":"` + base64.StdEncoding.EncodeToString([]byte("u:"+admin)) + `","escaped":"sk_test_4f1c2a3b4d5e\/4f608a7192b3c4d5e6f7","msg":"rate limited, retry later"}`
	got := redact(body, []string{key, admin, "u:" + admin})
	for _, leak := range []string{key, admin, "4f1c2a3b4d5e", "dTph"} {
		if strings.Contains(got, leak) {
			t.Errorf("redacted body still holds %q: %s", leak, got)
		}
	}
	if !strings.Contains(got, "rate limited, retry later") || !strings.Contains(got, "invalid api key") {
		t.Errorf("redaction removed the explanation: %s", got)
	}
	if long := redact(strings.Repeat("word ", 500), nil); len(long) > maxExcerpt+4 {
		t.Errorf("excerpt of %d bytes", len(long))
	}
}

// The RabbitMQ configuration puts the vhost "/" and a user name in a path:
// each stays one segment, and the request goes to base_url's host only.
func TestBuildKeepsSegmentsAndHost(t *testing.T) {
	c, err := parseDoc(rabbitDoc(), map[string]string{"PROVIDER_BASE_URL": "https://broker.internal:15671/"})
	if err != nil {
		t.Fatal(err)
	}
	vs := vars{}
	for k, v := range c.Constants {
		vs.set("config."+k, v, false)
	}
	vs.set("key_id", "app/../../admin", false)
	vs.set("admin.username", "admin", true)
	vs.set("admin.password", "pw-123456", true)
	cl := &caller{cfg: &c}
	req, err := cl.build(t.Context(), c.activate, vs)
	if err != nil {
		t.Fatal(err)
	}
	if req.URL.Host != "broker.internal:15671" || req.URL.EscapedPath() != "/api/permissions/%2F/app%2F..%2F..%2Fadmin" {
		t.Errorf("request to %s %s", req.URL.Host, req.URL.EscapedPath())
	}
	if u, p, ok := req.BasicAuth(); !ok || u != "admin" || p != "pw-123456" {
		t.Error("basic auth not set from the admin secret")
	}
}
