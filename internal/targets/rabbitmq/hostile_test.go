package rabbitmq_test

// The hostile-input suite of the RabbitMQ function: each test is an attack
// that a writer of one secret (PutSecretValue on its own secret, nothing
// more) can try, played against the real broker of scripts/rabbitmq.sh,
// with impostor as the attacker's own management API. Each refusal must
// name the secret, the field and the reason, and leave every version,
// label and broker user as it was.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// impostor is test equipment that plays an attacker's RabbitMQ management
// API on 127.0.0.1 (a port below 32768), over HTTPS with a certificate of
// its own (httptest's, which no configuration here trusts). It counts the
// TCP connections it accepts and records every request that reaches it,
// with the credentials of its Authorization header; it answers whoami as
// an administrator, so that nothing it says stops a function that trusted
// it.
type impostor struct {
	Port     int
	mu       sync.Mutex
	accepted int
	creds    []string // "user:password" of each request
}

func newImpostor(t testing.TB) *impostor {
	imp := &impostor{}
	l := dbtest.ListenLoopback(t)
	imp.Port = l.Addr().(*net.TCPAddr).Port
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		imp.mu.Lock()
		imp.creds = append(imp.creds, u+":"+p)
		imp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":%q,"tags":["administrator"]}`, u)
	}))
	srv.Listener.Close()
	srv.Listener = countingListener{Listener: l, imp: imp}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return imp
}

type countingListener struct {
	net.Listener
	imp *impostor
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.imp.mu.Lock()
		l.imp.accepted++
		l.imp.mu.Unlock()
	}
	return c, err
}

// seen returns the connections accepted and the credentials received.
func (imp *impostor) seen() (accepted int, creds []string) {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	return imp.accepted, append([]string(nil), imp.creds...)
}

// rotateOnce runs one rotation, stopping at the first failing step, and
// returns its token.
func rotateOnce(t testing.TB, h *dbtest.Harness, arn string) (string, error) {
	t.Helper()
	token := h.Open(arn)
	for _, step := range localrun.Steps {
		if err := h.Step(nil, step, arn, token); err != nil {
			return token, err
		}
	}
	return token, h.Em.CloseRotation(context.Background(), arn, token)
}

// TestHostileMasterSentToUserChosenServer: a secret must not make the
// function send master credentials to a management API of its choosing.
// The attacker's secret names its own user (which logs in at the real
// broker, so the proof of control passes) and the impostor's port as
// "management_port".
func TestHostileMasterSentToUserChosenServer(t *testing.T) {
	b := newBed(t)
	imp := newImpostor(t)
	for _, c := range []struct {
		name string
		// masterHost: the master secret names the broker's host and
		// management port; else it holds credentials only.
		masterHost bool
		allowed    []string // MASTER_ALLOWED_SERVERS
		field      string
		reason     string
		// connects: the function may open a TCP connection to the
		// impostor (never send it a request).
		connects bool
	}{{
		name:  "master secret of credentials only, no server allowed",
		field: `"masterarn"`, reason: fmt.Sprintf("MASTER_ALLOWED_SERVERS does not list 127.0.0.1:%d", imp.Port),
	}, {
		name: "master secret that names the broker", masterHost: true,
		field: `"host"`, reason: fmt.Sprintf("names %s:%d, the user secret (field \"host\") 127.0.0.1:%d", b.Host, b.APIPort, imp.Port),
	}, {
		// MASTER_ALLOWED_SERVERS lists the impostor (a mistake, or an
		// attacker on the network path of an allowed server): master
		// credentials still travel only over verified TLS.
		name:    "impostor allowed by mistake, without a verified certificate",
		allowed: []string{fmt.Sprintf("127.0.0.1:%d", imp.Port)},
		field:   "log in as master user", reason: "cannot reach", connects: true,
	}} {
		t.Run(c.name, func(t *testing.T) {
			h := dbtest.NewHarness(t, b.target(t, func(cfg *rabbitmq.Config) { cfg.MasterAllowedServers = c.allowed }))
			master, mpw := rabbitmqtest.Name("master_"), rabbitmqtest.Password()
			b.CreateUser(t, master, mpw, "administrator")
			ms := map[string]any{"username": master, "password": mpw}
			if c.masterHost {
				ms["host"], ms["management_port"] = b.Host, b.APIPort
			}
			masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, ms))
			user, pw := b.user(t, "attacker_")
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, map[string]any{
				"masterarn": masterARN, "management_port": imp.Port,
			})))
			before := dbtest.Snapshot(t, h, arn)
			acceptedBefore, _ := imp.seen()
			token, err := rotateOnce(t, h, arn)
			accepted, creds := imp.seen()
			if len(creds) != 0 {
				t.Fatalf("the impostor received %d requests", len(creds))
			}
			if !c.connects && accepted != acceptedBefore {
				t.Fatalf("the function connected to the impostor %d times", accepted-acceptedBefore)
			}
			if c.connects && accepted == acceptedBefore {
				t.Fatal("the function never tried the allowed server: the test shows nothing")
			}
			dbtest.Refused(t, err, arn, c.field, c.reason, mpw, pw)
			dbtest.Unchanged(t, h, arn, token, before)
			if _, err := b.admin.User(context.Background(), user+rabbitmq.CloneSuffix); err == nil {
				t.Fatal("a clone of the attacker's user was made")
			}
			if err := b.logsIn(t, master, mpw); err != nil {
				t.Fatalf("the master user's password changed: %v", err)
			}
			h.AssertNoSecretInLogs(mpw, pw)
		})
	}
}

// TestHostileSecretSteersTheMaster: the secret's "username" must not choose
// whose password the master user sets, nor whose rights a clone gets. The
// victim is a user the attacker does not control.
func TestHostileSecretSteersTheMaster(t *testing.T) {
	b := newBed(t)
	for _, c := range []struct {
		name   string
		single bool
		// secret returns the attacker's username and password for victim.
		secret func(t *testing.T, victim string) (user, password string)
		field  string
		reason string
	}{{
		name: "clone name of another user",
		secret: func(t *testing.T, victim string) (string, string) {
			return victim + rabbitmq.CloneSuffix, rabbitmqtest.Password()
		},
		field: `"username"`, reason: "no version of the secret proves control of",
	}, {
		name: "attacker's own user named like the clone",
		secret: func(t *testing.T, victim string) (string, string) {
			pw := rabbitmqtest.Password()
			b.CreateUser(t, victim+rabbitmq.CloneSuffix, pw)
			return victim + rabbitmq.CloneSuffix, pw
		},
		field: `"username"`, reason: "no version of the secret proves control of",
	}, {
		name:   "base user without its password",
		secret: func(t *testing.T, victim string) (string, string) { return victim, rabbitmqtest.Password() },
		field:  `"password"`, reason: "AWSCURRENT does not log in as",
	}, {
		name: "single user without its password", single: true,
		secret: func(t *testing.T, victim string) (string, string) { return victim, rabbitmqtest.Password() },
		field:  "cannot log in as", reason: "with AWSCURRENT or AWSPREVIOUS",
	}} {
		t.Run(c.name, func(t *testing.T) {
			h := dbtest.NewHarness(t, b.target(t, nil))
			masterARN, master, mpw := b.master(t, h.Em)
			victim, vpw := b.user(t, "victim_", "administrator")
			user, pw := c.secret(t, victim)
			extra := map[string]any{"masterarn": masterARN}
			if c.single {
				extra["strategy"] = "single-user"
			}
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, extra)))
			users := []string{victim, victim + rabbitmq.CloneSuffix, master}
			hashes := b.storedHashes(t, users...)
			before := dbtest.Snapshot(t, h, arn)
			token, err := rotateOnce(t, h, arn)
			dbtest.Refused(t, err, arn, c.field, c.reason, mpw, vpw, pw)
			dbtest.Unchanged(t, h, arn, token, before)
			if got := b.storedHashes(t, users...); fmt.Sprint(got) != fmt.Sprint(hashes) {
				t.Fatalf("broker users changed: %d users before, %d after, or a password changed", len(hashes), len(got))
			}
			if err := b.logsIn(t, victim, vpw); err != nil {
				t.Fatalf("the victim's own password does not log in: %v", err)
			}
			h.AssertNoSecretInLogs(mpw, vpw)
		})
	}
}

// TestHostileMasterNamesItself: a secret that names the master user as the
// user to rotate is refused before anything changes.
func TestHostileMasterNamesItself(t *testing.T) {
	b := newBed(t)
	h := dbtest.NewHarness(t, b.target(t, nil))
	masterARN, master, mpw := b.master(t, h.Em)
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(master, mpw, map[string]any{"masterarn": masterARN, "strategy": "single-user"})))
	hashes := b.storedHashes(t, master, master+rabbitmq.CloneSuffix)
	before := dbtest.Snapshot(t, h, arn)
	token, err := rotateOnce(t, h, arn)
	dbtest.Refused(t, err, arn, `"masterarn"`, "one of the users it would rotate", mpw)
	dbtest.Unchanged(t, h, arn, token, before)
	if got := b.storedHashes(t, master, master+rabbitmq.CloneSuffix); fmt.Sprint(got) != fmt.Sprint(hashes) {
		t.Fatal("the master user changed")
	}
}

// TestHostileCABundleNamesAnyFile: "ca_bundle" may name only a file shipped
// with the function. A path is refused in createSecret, before any file is
// opened, with the same answer whether the file exists or not.
func TestHostileCABundleNamesAnyFile(t *testing.T) {
	b := newBed(t)
	var answers []string
	for _, path := range []string{
		"/etc/passwd",
		"/no/such/file.pem",
		"../../../../etc/ssl/certs/ca-certificates.crt",
		b.CAFile, // a PEM file that would verify the broker, trusted by no setting
	} {
		// The function trusts no test CA: only the secret names one.
		h := dbtest.NewHarness(t, b.target(t, func(c *rabbitmq.Config) { c.CABundle = "" }))
		masterARN, _, _ := b.master(t, h.Em)
		user, pw := b.user(t, "ca_")
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, map[string]any{"masterarn": masterARN, "ca_bundle": path})))
		before := dbtest.Snapshot(t, h, arn)
		token, err := rotateOnce(t, h, arn)
		dbtest.Refused(t, err, arn, `"ca_bundle"`, "bare name of a PEM file shipped with the function", pw)
		if !strings.HasPrefix(err.Error(), "createSecret ") {
			t.Fatalf("ca_bundle %s: refused by %v, want createSecret, before anything is stored", path, err)
		}
		dbtest.Unchanged(t, h, arn, token, before)
		answers = append(answers, strings.ReplaceAll(err.Error(), arn, "<arn>"))
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Fatalf("the refusals differ, which tells the file system apart:\n%s\n%s", answers[0], a)
		}
	}
}

// TestCABundleShippedWithTheFunction: a bare file name in "ca_bundle" is
// looked up in the function's own directory, and trusted there; for the
// secret's own logins only: the master user's connection trusts what the
// master secret names.
func TestCABundleShippedWithTheFunction(t *testing.T) {
	b := newBed(t)
	dir := t.TempDir()
	pem, err := os.ReadFile(b.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broker-ca.pem"), pem, 0o600); err != nil {
		t.Fatal(err)
	}
	h := dbtest.NewHarness(t, b.target(t, func(c *rabbitmq.Config) { c.CABundle, c.BundleDir = "", dir }))
	masterARN, master, _ := b.master(t, h.Em)
	user, pw := b.user(t, "ca_")
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, map[string]any{"masterarn": masterARN, "ca_bundle": "broker-ca.pem"})))
	_, err = h.Rotate(arn)
	if err == nil || !strings.Contains(err.Error(), "log in as master user "+master+": cannot reach") || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("the user secret's CA file was trusted for the master user's connection: %v", err)
	}
	masterPW := rabbitmqtest.Password()
	b.CreateUser(t, master+"_ca", masterPW, "administrator")
	masterARN = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, map[string]any{
		"username": master + "_ca", "password": masterPW, "host": b.Host, "management_port": b.APIPort, "ca_bundle": "broker-ca.pem",
	}))
	arn = testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, map[string]any{"masterarn": masterARN, "ca_bundle": "broker-ca.pem"})))
	if _, err := h.Rotate(arn); err != nil {
		t.Fatalf("rotation with the shipped CA file in both secrets: %v", err)
	}
	if err := b.login(t, h.Current(arn)); err != nil {
		t.Fatal(err)
	}
}
