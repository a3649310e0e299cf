package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// recorder keeps a copy of every request the Admin sends to the real
// broker (test equipment: the broker still answers every request).
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, url string
	body        []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.URL.String(), body})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// TestNoPasswordLeavesTheFunction records what the Admin sends: the broker
// does not log passwords even when it is sent one in plaintext ("password"
// in PUT /api/users), so only the requests themselves can show that every
// password travels as a hash. Each hash sent must verify against the
// password it stands for, which shows the scan looked where a password
// would be.
func TestNoPasswordLeavesTheFunction(t *testing.T) {
	env := testbed.EnvFile(t, "rabbitmq.env", "scripts/rabbitmq.sh")
	port, _ := strconv.Atoi(env["RABBITMQ_MGMT_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, env["RABBITMQ_HOST"], env["RABBITMQ_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := Connect(ctx, Endpoint{Host: env["RABBITMQ_HOST"], APIPort: port, TLS: tlsCfg, Timeout: 10 * time.Second},
		env["RABBITMQ_ADMIN_USER"], env["RABBITMQ_ADMIN_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rec := &recorder{next: a.http.Transport}
	a.http.Transport = rec

	user := "wire_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	clone := user + "_clone"
	p0, p1, p2 := "pw0-"+user, "pw1-"+user, "pw2-"+user
	hash, err := PasswordHash(p0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.putUser(ctx, user, hash, []string{"monitoring"}); err != nil {
		t.Fatal(err)
	}
	defer a.DeleteUser(ctx, user)
	if err := a.SetPassword(ctx, user, p1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.HasPassword(ctx, user, p1); err != nil {
		t.Fatal(err)
	}
	if err := a.EnsureClone(ctx, user, clone, p2); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteUser(ctx, clone); err != nil {
		t.Fatal(err)
	}

	verified := map[string]bool{}
	for _, r := range rec.reqs {
		for _, pw := range []string{p0, p1, p2} {
			if strings.Contains(r.url, pw) || bytes.Contains(r.body, []byte(pw)) {
				t.Errorf("%s %s carries a password in plaintext", r.method, r.url)
			}
		}
		if r.method != http.MethodPut || !strings.Contains(r.url, "/api/users/") {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v", r.method, r.url, err)
		}
		if _, ok := body["password"]; ok {
			t.Errorf("%s %s has a \"password\" field", r.method, r.url)
		}
		h, _ := body["password_hash"].(string)
		if body["hashing_algorithm"] != HashingAlgorithm || h == "" {
			t.Errorf("%s %s: want password_hash and hashing_algorithm %s", r.method, r.url, HashingAlgorithm)
		}
		for _, pw := range []string{p1, p2} {
			if ok, _ := passwordMatches(HashingAlgorithm, h, pw); ok {
				verified[pw] = true
			}
		}
	}
	if !verified[p1] || !verified[p2] {
		t.Errorf("the recorded requests hold no hash of the new passwords (found: %v): the scan missed the requests that set them", verified)
	}
}
