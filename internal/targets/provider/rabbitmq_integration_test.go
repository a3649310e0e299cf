// The tests of functions/provider/configs/rabbitmq.json against the real
// RabbitMQ broker (management plugin over TLS) that scripts/rabbitmq.sh
// starts for `make test` (it writes .testbed/rabbitmq.env):
//
//	scripts/rabbitmq.sh up && . .testbed/env
//	go test -run RabbitMQ ./internal/targets/provider/

package provider_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

type broker struct {
	url, user, password, caFile, logFile string
	client                               *http.Client
}

// rabbitBroker is the test bed's broker (rabbitmqtest.Settings), whose
// management API the shipped configuration is pointed at.
func rabbitBroker(t *testing.T) *broker {
	t.Helper()
	s := rabbitmqtest.Settings(t)
	b := &broker{url: fmt.Sprintf("https://%s:%d", s.Host, s.APIPort), user: s.AdminUser, password: s.AdminPassword,
		caFile: s.CAFile, logFile: s.LogFile}
	roots, err := httpsclient.LoadRoots(b.caFile)
	if err != nil {
		t.Fatal(err)
	}
	b.client = httpsclient.New(httpsclient.Transport(roots), 10*time.Second)
	return b
}

// get sends GET path with basic auth and decodes the answer into out.
func (b *broker) get(t *testing.T, path, user, pass string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.url+path, nil)
	req.SetBasicAuth(user, pass)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, httpsclient.Cause(err))
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (b *broker) deleteUser(name string) {
	req, _ := http.NewRequest(http.MethodDelete, b.url+"/api/users/"+url.PathEscape(name), nil)
	req.SetBasicAuth(b.user, b.password)
	if resp, err := b.client.Do(req); err == nil {
		resp.Body.Close()
	}
}

// newRabbitFixture is a fixture whose provider is the broker, with the
// shipped rabbitmq.json. Users are this test's when their name carries
// the mark of one of its secrets; they are deleted when the test ends.
func newRabbitFixture(t *testing.T) (*fixture, *broker) {
	b := rabbitBroker(t)
	f := &fixture{t: t, em: testbed.Emulator(t), awsCfg: testbed.AWSConfig(t), logs: &testbed.LogBuffer{},
		kind: "user", keyField: "password", idField: "username"}
	admin, _ := json.Marshal(map[string]string{"username": b.user, "password": b.password})
	f.adminARN = testbed.CreateSecret(t, f.em, string(admin))
	f.env = map[string]string{
		"PROVIDER_CONFIG_FILE": filepath.Join(testbed.ModuleRoot(t), "functions", "provider", "configs", "rabbitmq.json"),
		"PROVIDER_BASE_URL":    b.url,
		"PROVIDER_CA_FILE":     b.caFile,
		"ADMIN_SECRET_ID":      f.adminARN,
	}
	ours := func(name string) bool {
		for _, arn := range f.arns {
			sum := sha256.Sum256([]byte(arn))
			if strings.HasPrefix(name, "app-"+hex.EncodeToString(sum[:6])+"-") {
				return true
			}
		}
		return false
	}
	f.liveIDs = func() []string {
		var users []struct{ Name string }
		if st := b.get(t, "/api/users", b.user, b.password, &users); st != http.StatusOK {
			t.Fatalf("list users: %d", st)
		}
		var ids []string
		for _, u := range users {
			if ours(u.Name) {
				ids = append(ids, u.Name)
			}
		}
		return ids
	}
	f.works = func(id, key string) bool {
		var who struct{ Name string }
		return b.get(t, "/api/whoami", id, key, &who) == http.StatusOK && who.Name == id
	}
	f.secrets = func() []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		return append(append([]string(nil), f.seenKeys...), b.password)
	}
	t.Cleanup(func() {
		for _, id := range f.liveIDs() {
			b.deleteUser(id)
		}
	})
	t.Cleanup(f.scanForLeaks)
	return f, b
}

// Three rotations of a RabbitMQ user: each makes a new user with a
// generated password (sent as a salted SHA-256 hash), grants it the
// configured permissions, proves it logs in, and deletes the user from two
// rotations ago. No password appears in the function's logs or in the
// broker's own log (debug level).
func TestRabbitMQRotations(t *testing.T) {
	f, b := newRabbitFixture(t)
	arn := f.newSecret(`{"host":"127.0.0.1","vhost":"/"}`)
	var users []string
	for i := range 3 {
		f.rotate(arn)
		users = append(users, f.field(arn, "AWSCURRENT", "username"))
		if !f.keyWorks(arn, "AWSCURRENT") {
			t.Fatalf("rotation %d: the new user does not log in", i+1)
		}
		var perm struct{ Configure, Write, Read string }
		if st := b.get(t, "/api/permissions/%2F/"+url.PathEscape(users[i]), b.user, b.password, &perm); st != http.StatusOK || perm.Configure != `^app\.` {
			t.Fatalf("rotation %d: permissions of %s: %d %+v", i+1, users[i], st, perm)
		}
		if i > 0 && !f.keyWorks(arn, "AWSPREVIOUS") {
			t.Fatalf("rotation %d: the previous user no longer logs in during its grace period", i+1)
		}
	}
	f.wantLive("after three rotations", users[1], users[2])
	if b.logFile != "" {
		log, err := os.ReadFile(b.logFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, pw := range f.secrets() {
			if strings.Contains(string(log), pw) {
				t.Error("a password appears in the broker's log")
			}
		}
	}
}

// The crash test at every call, Secrets Manager and management API alike.
func TestRabbitMQCrashAtEveryCall(t *testing.T) {
	f, _ := newRabbitFixture(t)
	crashEveryCall(t, f, false, []string{"GET /api/users", "PUT /api/users/", "PUT /api/permissions/", "GET /api/whoami", "DELETE /api/users/", "PutSecretValue"})
}
