// Package redistest connects tests to the real Redis server that
// scripts/redis.sh starts (it writes .testbed/redis.env), and reads what the
// server itself records: MONITOR, SLOWLOG and ACL LOG. It holds no fake.
package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// Server is the test bed's Redis.
type Server struct {
	Host                     string
	Port, TLSPort            int
	AdminUser, AdminPassword string
	CAFile                   string
}

// Settings reads .testbed/redis.env.
func Settings(t testing.TB) *Server {
	t.Helper()
	m := testbed.EnvFile(t, "redis.env", "scripts/redis.sh")
	s := &Server{Host: m["REDIS_HOST"], AdminUser: m["REDIS_ADMIN_USER"], AdminPassword: m["REDIS_ADMIN_PASSWORD"], CAFile: m["REDIS_CA_FILE"]}
	var err1, err2 error
	s.Port, err1 = strconv.Atoi(m["REDIS_PORT"])
	s.TLSPort, err2 = strconv.Atoi(m["REDIS_TLS_PORT"])
	if err1 != nil || err2 != nil || s.Host == "" || s.AdminPassword == "" || s.CAFile == "" {
		t.Fatalf(".testbed/redis.env is incomplete: run scripts/redis.sh up")
	}
	return s
}

// Endpoint is the TLS listener, verified against the test CA.
func (s *Server) Endpoint(t testing.TB) dbsecret.Endpoint {
	t.Helper()
	cfg, err := dbsecret.TLSConfig(true, s.Host, s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return dbsecret.Endpoint{Host: s.Host, Port: s.TLSPort, TLS: cfg, Timeout: 5 * time.Second}
}

// PlainEndpoint is the plaintext listener.
func (s *Server) PlainEndpoint() dbsecret.Endpoint {
	return dbsecret.Endpoint{Host: s.Host, Port: s.Port, Timeout: 5 * time.Second}
}

// Admin logs in as the admin user through the package under test; the
// session ends with the test.
func (s *Server) Admin(t testing.TB) *redis.Conn {
	t.Helper()
	c, err := redis.Connect(context.Background(), s.Endpoint(t), s.AdminUser, s.AdminPassword)
	if err != nil {
		t.Fatalf("log in as %s: %v", s.AdminUser, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Client is a go-redis client logged in as the admin user, for setting up
// and inspecting the server (not the code under test).
func (s *Server) Client(t testing.TB) *goredis.Client {
	t.Helper()
	return s.ClientAt(t, s.Endpoint(t))
}

// ClientAt is Client through another endpoint (a Relay's).
func (s *Server) ClientAt(t testing.TB, ep dbsecret.Endpoint) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr:     net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)),
		Username: s.AdminUser, Password: s.AdminPassword,
		TLSConfig: ep.TLS, Protocol: 2, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// Name returns a fresh name with prefix.
func Name(prefix string) string { return testbed.UniqueName(prefix) }

// Password returns a random password.
func Password() string { return testbed.RandomPassword() }

// CreateUser creates an ACL user with rules (plus the password's hash) and
// deletes it when the test ends.
func (s *Server) CreateUser(t testing.TB, name, password string, rules ...string) {
	t.Helper()
	c := s.Client(t)
	args := []any{"ACL", "SETUSER", name, "reset"}
	for _, r := range rules {
		args = append(args, r)
	}
	args = append(args, "#"+redis.PasswordHash(password))
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("create ACL user %s: %v", name, err)
	}
	t.Cleanup(func() { s.DeleteUser(t, name) })
}

// DeleteUser deletes an ACL user if it exists.
func (s *Server) DeleteUser(t testing.TB, name string) {
	t.Helper()
	c := s.Client(t)
	if err := c.Do(context.Background(), "ACL", "DELUSER", name).Err(); err != nil {
		t.Errorf("delete ACL user %s: %v", name, err)
	}
}

// ACLLogEntry is one entry of ACL LOG.
type ACLLogEntry struct {
	Count              int64
	Reason, Username   string
	Context, Object    string
	ClientInfo, Fields string // Fields: every field, for scanning
}

// ACLLog returns the server's ACL LOG (at most its acllog-max-len newest
// entries; the bed keeps 1024).
func (s *Server) ACLLog(t testing.TB) []ACLLogEntry {
	t.Helper()
	res, err := s.Client(t).Do(context.Background(), "ACL", "LOG").Result()
	if err != nil {
		t.Fatalf("ACL LOG: %v", err)
	}
	list, _ := res.([]any)
	var out []ACLLogEntry
	for _, e := range list {
		fields, _ := e.([]any)
		var en ACLLogEntry
		var all []string
		for i := 0; i+1 < len(fields); i += 2 {
			k := fmt.Sprint(fields[i])
			v := fmt.Sprint(fields[i+1])
			all = append(all, k+"="+v)
			switch k {
			case "count":
				en.Count, _ = strconv.ParseInt(v, 10, 64)
			case "reason":
				en.Reason = v
			case "username":
				en.Username = v
			case "context":
				en.Context = v
			case "object":
				en.Object = v
			case "client-info":
				en.ClientInfo = v
			}
		}
		en.Fields = strings.Join(all, " ")
		out = append(out, en)
	}
	return out
}

// AuthFailures is the server's own count of refused logins (ACL LOG
// entries with reason "auth") for user. Redis 7.0 has no counter of its
// own in INFO (acl_access_denied_auth came with 7.2), and writes no log
// line for a refused AUTH; ACL LOG merges repeated refusals of one user
// into one entry with a count, which this adds up.
func (s *Server) AuthFailures(t testing.TB, user string) int64 {
	t.Helper()
	var n int64
	for _, e := range s.ACLLog(t) {
		if e.Reason == "auth" && e.Username == user {
			n += e.Count
		}
	}
	return n
}

// SlowLog returns every argument of every SLOWLOG entry (the bed logs
// every command: slowlog-log-slower-than 0), one line per entry.
func (s *Server) SlowLog(t testing.TB) []string {
	t.Helper()
	res, err := s.Client(t).Do(context.Background(), "SLOWLOG", "GET", "-1").Result()
	if err != nil {
		t.Fatalf("SLOWLOG GET: %v", err)
	}
	list, _ := res.([]any)
	var out []string
	for _, e := range list {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

// Monitor is a MONITOR session: every command the server runs, as the
// server prints it, until Stop.
type Monitor struct {
	conn   net.Conn
	client *goredis.Client
	mu     sync.Mutex
	lines  []string
	done   chan struct{}
	once   sync.Once
}

// Monitor starts MONITOR on a connection of its own (plain RESP over TLS:
// go-redis's MONITOR polls in a busy loop) and returns once the server
// confirmed it.
func (s *Server) Monitor(t testing.TB) *Monitor {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp",
		net.JoinHostPort(s.Host, strconv.Itoa(s.TLSPort)), s.Endpoint(t).TLS)
	if err != nil {
		t.Fatalf("MONITOR: dial: %v", err)
	}
	rd := bufio.NewReader(conn)
	send := func(args ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			t.Fatalf("MONITOR: write: %v", err)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("MONITOR: read: %v", err)
		}
		return strings.TrimSpace(line)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if r := send("AUTH", s.AdminUser, s.AdminPassword); r != "+OK" {
		t.Fatalf("MONITOR: AUTH answered %q", r)
	}
	if r := send("MONITOR"); r != "+OK" {
		t.Fatalf("MONITOR answered %q", r)
	}
	_ = conn.SetDeadline(time.Time{})
	m := &Monitor{conn: conn, client: s.Client(t), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			m.mu.Lock()
			m.lines = append(m.lines, strings.TrimSpace(line))
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { m.conn.Close() })
	return m
}

// Stop ends the session and returns every line it saw. It first runs a
// marker command and waits (up to 10 s) until MONITOR shows it: by then
// every command run before Stop has been read.
func (m *Monitor) Stop() []string {
	m.once.Do(func() {
		marker := Name("monitor-end-")
		if err := m.client.Echo(context.Background(), marker).Err(); err == nil {
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if slicesContainsSubstring(m.Lines(), marker) {
					break
				}
			}
		}
		m.conn.Close()
		<-m.done
	})
	return m.Lines()
}

func slicesContainsSubstring(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// Lines returns the lines seen so far.
func (m *Monitor) Lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.lines...)
}

// Login is the load's login: redis.Probe against ep.
func Login(ep dbsecret.Endpoint) loadtest.LoginFunc {
	return func(ctx context.Context, user, password string) error {
		return redis.Probe(ctx, ep, user, password)
	}
}
