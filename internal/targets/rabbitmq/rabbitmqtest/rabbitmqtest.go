// Package rabbitmqtest connects tests to the real RabbitMQ broker that
// scripts/rabbitmq.sh starts (it writes .testbed/rabbitmq.env), and reads
// what the broker itself records: its log and its authentication counters.
// It holds no fake.
package rabbitmqtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// Server is the test bed's broker.
type Server struct {
	Host                     string
	AMQPSPort, APIPort       int
	AdminUser, AdminPassword string
	CAFile, LogFile          string
}

// Settings reads .testbed/rabbitmq.env.
func Settings(t testing.TB) *Server {
	t.Helper()
	m := testbed.EnvFile(t, "rabbitmq.env", "scripts/rabbitmq.sh")
	s := &Server{Host: m["RABBITMQ_HOST"], AdminUser: m["RABBITMQ_ADMIN_USER"], AdminPassword: m["RABBITMQ_ADMIN_PASSWORD"],
		CAFile: m["RABBITMQ_CA_FILE"], LogFile: m["RABBITMQ_LOG_FILE"]}
	var err1, err2 error
	s.AMQPSPort, err1 = strconv.Atoi(m["RABBITMQ_AMQPS_PORT"])
	s.APIPort, err2 = strconv.Atoi(m["RABBITMQ_MGMT_PORT"])
	if err1 != nil || err2 != nil || s.Host == "" || s.AdminPassword == "" || s.CAFile == "" || s.LogFile == "" {
		t.Fatalf(".testbed/rabbitmq.env is incomplete: run scripts/rabbitmq.sh up")
	}
	return s
}

// Endpoint is the broker's TLS listeners, verified against the test CA.
func (s *Server) Endpoint(t testing.TB) rabbitmq.Endpoint {
	t.Helper()
	cfg, err := dbsecret.TLSConfig(true, s.Host, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return rabbitmq.Endpoint{Host: s.Host, APIPort: s.APIPort, AMQPPort: s.AMQPSPort, VHost: "/", TLS: cfg, Timeout: 10 * time.Second}
}

// Admin logs in to the management API as the admin user, through the
// package under test.
func (s *Server) Admin(t testing.TB) *rabbitmq.Admin {
	t.Helper()
	a, err := rabbitmq.Connect(context.Background(), s.Endpoint(t), s.AdminUser, s.AdminPassword)
	if err != nil {
		t.Fatalf("log in as %s: %v", s.AdminUser, err)
	}
	t.Cleanup(a.Close)
	return a
}

// API sends one management API request as the admin user, for setting up
// and inspecting the broker (not the code under test). A status other than
// 2xx fails the test.
func (s *Server) API(t testing.TB, method string, path []string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	var p strings.Builder
	for _, seg := range path {
		p.WriteString("/" + url.PathEscape(seg))
	}
	req, err := http.NewRequest(method, fmt.Sprintf("https://%s:%d%s", s.Host, s.APIPort, p.String()), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(s.AdminUser, s.AdminPassword)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: s.Endpoint(t).TLS}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, p.String(), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		t.Fatalf("%s %s: %s: %s", method, p.String(), resp.Status, data)
	}
	return data
}

// Name returns a fresh name with prefix.
func Name(prefix string) string { return testbed.UniqueName(prefix) }

// Password returns a random password.
func Password() string { return testbed.RandomPassword() }

// CreateUser creates a user with password (sent as a hash), tags and full
// permissions on vhost "/", and deletes it when the test ends.
func (s *Server) CreateUser(t testing.TB, name, password string, tags ...string) {
	t.Helper()
	hash, err := rabbitmq.PasswordHash(password)
	if err != nil {
		t.Fatal(err)
	}
	s.API(t, http.MethodPut, []string{"api", "users", name}, map[string]string{
		"password_hash": hash, "hashing_algorithm": rabbitmq.HashingAlgorithm, "tags": strings.Join(tags, ","),
	})
	t.Cleanup(func() { s.DeleteUser(t, name) })
	s.API(t, http.MethodPut, []string{"api", "permissions", "/", name}, map[string]string{"configure": ".*", "write": ".*", "read": ".*"})
}

// DeleteUser deletes a user if it exists.
func (s *Server) DeleteUser(t testing.TB, name string) {
	t.Helper()
	a := s.Admin(t)
	if err := a.DeleteUser(context.Background(), name); err != nil {
		t.Errorf("delete user %s: %v", name, err)
	}
}

// CreateVHost creates a virtual host and deletes it when the test ends.
func (s *Server) CreateVHost(t testing.TB, name string) {
	t.Helper()
	s.API(t, http.MethodPut, []string{"api", "vhosts", name}, map[string]string{})
	t.Cleanup(func() { s.API(t, http.MethodDelete, []string{"api", "vhosts", name}, nil) })
}

// FailedLogins is the broker's own count of refused AMQP 0-9-1 logins
// (its auth_attempts_failed counter for protocol amqp091).
func (s *Server) FailedLogins(t testing.TB) int64 {
	t.Helper()
	m, err := s.Admin(t).AuthAttempts(context.Background())
	if err != nil {
		t.Fatalf("read the broker's authentication counters: %v", err)
	}
	return m["amqp091"].Failed
}

// Log is a position in the broker's log file.
type Log struct {
	file   string
	offset int64
}

// LogFrom remembers where the broker's log ends now.
func (s *Server) LogFrom(t testing.TB) *Log {
	t.Helper()
	fi, err := os.Stat(s.LogFile)
	if err != nil {
		t.Fatalf("broker log: %v", err)
	}
	return &Log{file: s.LogFile, offset: fi.Size()}
}

// Lines returns the log's lines written since LogFrom. The broker writes
// its log asynchronously: wait until a line containing marker is there (up
// to 10 s) when marker is not empty.
func (l *Log) Lines(t testing.TB, marker string) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		f, err := os.Open(l.file)
		if err != nil {
			t.Fatalf("broker log: %v", err)
		}
		if _, err := f.Seek(l.offset, io.SeekStart); err != nil {
			f.Close()
			t.Fatal(err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if marker == "" || bytes.Contains(data, []byte(marker)) || time.Now().After(deadline) {
			return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		}
	}
}

// Mark writes marker into the broker's log: the broker logs the
// client-provided name of every AMQP connection, here marker, after the
// lines of everything that happened before. Wait for it with Lines.
func (s *Server) Mark(t testing.TB, marker string) {
	t.Helper()
	ep := s.Endpoint(t)
	conn, err := amqp.DialConfig(fmt.Sprintf("amqps://%s:%d/", ep.Host, ep.AMQPPort), amqp.Config{
		SASL:            []amqp.Authentication{&amqp.PlainAuth{Username: s.AdminUser, Password: s.AdminPassword}},
		TLSClientConfig: ep.TLS, Properties: amqp.Table{"connection_name": marker}, Dial: amqp.DefaultDial(10 * time.Second),
	})
	if err != nil {
		t.Fatalf("mark the broker log: %v", err)
	}
	conn.Close()
}

// Until marks the log and returns its lines since LogFrom up to the mark.
func (l *Log) Until(t testing.TB, s *Server) []string {
	t.Helper()
	marker := Name("log-mark-")
	s.Mark(t, marker)
	lines := l.Lines(t, marker)
	for i, line := range lines {
		if strings.Contains(line, marker) {
			return lines[:i+1]
		}
	}
	t.Fatalf("the broker did not log the mark %s within 10 s", marker)
	return nil
}

// RefusedLogins counts the log lines of refused logins: "login refused"
// (AMQP, with the reason "invalid credentials" or another) and "HTTP
// access denied" (management API).
func RefusedLogins(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "login refused") || strings.Contains(l, "HTTP access denied") {
			n++
		}
	}
	return n
}

// Login is the load's login: rabbitmq.Probe against ep.
func Login(ep rabbitmq.Endpoint) loadtest.LoginFunc {
	return func(ctx context.Context, user, password string) error {
		return rabbitmq.Probe(ctx, ep, user, password)
	}
}
