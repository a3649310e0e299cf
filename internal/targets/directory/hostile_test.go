package directory_test

// The hostile-input suite of the directory function: a writer of one
// secret (PutSecretValue on it, nothing more) tries to make the function
// send master credentials elsewhere or reset an account it does not
// control. Each refusal must name the secret, the field and the reason,
// come before the master user logs in anywhere, and leave every version,
// label and directory account as it was.

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// attackerHost is test equipment that plays an attacker's server on
// 127.0.0.1: it accepts connections, counts them, and answers nothing.
func attackerHost(t *testing.T) (port int, connections func() int64) {
	t.Helper()
	l := dbtest.ListenLoopback(t)
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, n.Load
}

// attempt rotates arn once (stopping at the first failing step) and checks
// that it was refused with every want in the error, that no version
// changed and that the master user logged in nowhere.
func (s server) attempt(t *testing.T, h *dbtest.Harness, arn string, want []string, secrets ...string) {
	t.Helper()
	before := versions(t, h.Em, arn)
	masterBinds := s.masterBinds(t)
	token, err := rotateOnce(t, h, arn)
	refusal(t, err, append([]string{arn}, want...), secrets...)
	unchanged(t, h.Em, arn, token, before)
	if n := masterBinds(); n != 0 {
		t.Fatalf("the master user logged in %d times", n)
	}
	h.AssertNoSecretInLogs(secrets...)
}

// TestHostileSecretNamesAnotherHost: the directory is the function's
// configuration; a secret (or its master secret, or a pending version its
// writer stored) that names another host or port is refused before any
// connection, and the attacker's host never hears from the function.
func TestHostileSecretNamesAnotherHost(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			port, connections := attackerHost(t)
			em := testbed.Emulator(t)
			h := dbtest.NewHarness(t, target(s.config(t), testbed.AWSConfig(t)))
			// The attacker's own account, whose password it knows, at its
			// own server; in the directory's allowed subtree.
			pw := dirtest.Password()
			for _, c := range []struct {
				name  string
				extra map[string]any
				want  []string
			}{
				{"another host", map[string]any{"host": "ldap.attacker.example"}, []string{`field "host"`, "ldap.attacker.example", "DIRECTORY_URL"}},
				{"another port", map[string]any{"host": "127.0.0.1", "port": port}, []string{`field "port"`, strconv.Itoa(port), "DIRECTORY_URL"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					f := s.newFixture(t, em, alternating, c.extra)
					s.attempt(t, h, f.arn, c.want, f.masterP, pw)
				})
			}
			t.Run("master secret names another host", func(t *testing.T) {
				f := s.newFixture(t, em, alternating, nil)
				if _, err := em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
					SecretId: aws.String(f.masterARN), SecretString: aws.String(secretJSON(t, map[string]any{
						"username": s.masterDN, "password": s.masterPassword, "host": "127.0.0.1", "port": port,
					})),
				}); err != nil {
					t.Fatal(err)
				}
				s.attempt(t, h, f.arn, []string{`field "masterarn"`, `field "port"`, "DIRECTORY_URL"}, s.masterPassword)
				if err := s.login(t, f.base, f.password); err != nil {
					t.Fatalf("the account's password changed: %v", err)
				}
			})
			t.Run("pending version names another host", func(t *testing.T) {
				f := s.newFixture(t, em, single, nil)
				token := h.Open(f.arn)
				if _, err := em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
					SecretId: aws.String(f.arn), ClientRequestToken: aws.String(token), VersionStages: []string{"AWSPENDING"},
					SecretString: aws.String(secretJSON(t, map[string]any{"username": f.base, "password": pw, "host": "127.0.0.1", "port": port})),
				}); err != nil {
					t.Fatal(err)
				}
				for _, step := range []string{"setSecret", "testSecret"} {
					err := h.Step(nil, step, f.arn, token)
					refusal(t, err, []string{f.arn, "AWSPENDING", `field "port"`}, pw, f.password)
				}
				if err := s.login(t, f.base, f.password); err != nil {
					t.Fatalf("the account's password changed: %v", err)
				}
			})
			if n := connections(); n != 0 {
				t.Fatalf("the attacker's host saw %d connections", n)
			}
		})
	}
}

// TestHostileAccountOutsideTheAllowedBaseDN: a secret may name only an
// account below DIRECTORY_ALLOWED_BASE_DNS, even one whose password its
// writer knows (their own personal account, say), and even through a
// pending version: the function touches nothing else and no master
// credential is read or used.
func TestHostileAccountOutsideTheAllowedBaseDN(t *testing.T) {
	for _, s := range servers(t) {
		for _, st := range strategies {
			t.Run(s.name+"/"+string(st), func(t *testing.T) {
				em := testbed.Emulator(t)
				h := dbtest.NewHarness(t, target(s.config(t), testbed.AWSConfig(t)))
				victimPW := dirtest.Password()
				victim := s.outside(t, dirtest.Name("svc"), victimPW)
				f := s.newFixture(t, em, st, map[string]any{"username": victim, "password": victimPW})
				s.attempt(t, h, f.arn, []string{`field "username"`, victim, "not below DIRECTORY_ALLOWED_BASE_DNS"}, victimPW, f.masterP)
				if err := s.login(t, victim, victimPW); err != nil {
					t.Fatalf("the victim's password changed: %v", err)
				}
			})
		}
	}
}

// TestHostileAlternatingSteersTheMaster: inside the allowed subtree, the
// secret's "username" still does not choose whose password the master
// user sets: only an account that a version of the secret logs in as, or
// the clone of such an account at its first rotation.
func TestHostileAlternatingSteersTheMaster(t *testing.T) {
	for _, s := range servers(t) {
		for _, c := range []struct {
			name string
			// user returns the username the attacker writes, given the
			// victim's DN and its clone's.
			user          func(victim, clone string) string
			field, reason string
		}{
			{"the clone's name", func(_, clone string) string { return clone }, `"username"`, "no version of the secret proves control of"},
			{"the account's name without its password", func(victim, _ string) string { return victim }, `"password"`, "AWSCURRENT does not log in as"},
		} {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				em := testbed.Emulator(t)
				h := dbtest.NewHarness(t, target(s.config(t), testbed.AWSConfig(t)))
				// The victim: an alternating pair that exists, whose
				// passwords the attacker does not know.
				cn, victimPW, clonePW := dirtest.Name("svc"), dirtest.Password(), dirtest.Password()
				victim := s.add(t, cn, victimPW)
				clone := s.add(t, cn+"_clone", clonePW)
				guess := dirtest.Password()
				masterARN := testbed.CreateSecret(t, em, secretJSON(t, map[string]any{"username": s.masterDN, "password": s.masterPassword}))
				arn := testbed.CreateSecret(t, em, secretJSON(t, map[string]any{"username": c.user(victim, clone), "password": guess, "masterarn": masterARN}))
				s.attempt(t, h, arn, []string{c.field, c.reason}, s.masterPassword, victimPW, clonePW, guess)
				if err := s.login(t, victim, victimPW); err != nil {
					t.Fatalf("the victim's password changed: %v", err)
				}
				if err := s.login(t, clone, clonePW); err != nil {
					t.Fatalf("the victim's clone's password changed: %v", err)
				}
			})
		}
	}
}

// TestHostileTLSTurnedOff: a secret may ask for a plaintext bind of its own
// account only where the function's configuration allows it; master
// credentials never travel in plaintext, whatever either secret says.
func TestHostileTLSTurnedOff(t *testing.T) {
	s := slapdServer(t)
	slapd := dirtest.LoadSlapd(t)
	startTLS := "ldap://" + slapd.Host + ":" + slapd.Port
	em := testbed.Emulator(t)

	t.Run("plaintext not allowed", func(t *testing.T) {
		h := dbtest.NewHarness(t, target(s.config(t, "DIRECTORY_URL", startTLS), testbed.AWSConfig(t)))
		f := s.newFixture(t, em, single, map[string]any{"security": "plaintext"})
		mark := dirtest.MarkSlapdLog(t, slapd)
		s.attempt(t, h, f.arn, []string{`field "security"`, "DIRECTORY_ALLOW_PLAINTEXT"}, f.password)
		if n := mark.Read(t).ByDN[strings.ToLower(f.base)]; n != 0 {
			t.Fatalf("the account bound %d times", n)
		}
	})

	allowed := func(t *testing.T) *dbtest.Harness {
		return dbtest.NewHarness(t, target(s.config(t, "DIRECTORY_URL", startTLS, "DIRECTORY_ALLOW_PLAINTEXT", "true"), testbed.AWSConfig(t)))
	}
	t.Run("plaintext allowed: the account's own binds only", func(t *testing.T) {
		h := allowed(t)
		f := s.newFixture(t, em, alternating, map[string]any{"security": "plaintext"})
		mark := dirtest.MarkSlapdLog(t, slapd)
		if _, err := rotateOnce(t, h, f.arn); err != nil {
			t.Fatal(err)
		}
		b := mark.Read(t)
		master := strings.ToLower(s.masterDN)
		if b.ByDN[master] != 1 || b.Plaintext[master] != 0 {
			t.Fatalf("the master user bound %d times, %d of them without TLS; want once, over TLS", b.ByDN[master], b.Plaintext[master])
		}
		if b.Plaintext[strings.ToLower(f.base)] == 0 {
			t.Fatal("the account's own binds used TLS although its secret asked for plaintext: the test proves nothing")
		}
	})
	t.Run("master secret turns TLS off", func(t *testing.T) {
		h := allowed(t)
		f := s.newFixture(t, em, alternating, nil)
		if _, err := em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(f.masterARN), SecretString: aws.String(secretJSON(t, map[string]any{
				"username": s.masterDN, "password": s.masterPassword, "security": "plaintext",
			})),
		}); err != nil {
			t.Fatal(err)
		}
		s.attempt(t, h, f.arn, []string{`field "masterarn"`, "only over verified TLS"}, s.masterPassword)
	})
}
