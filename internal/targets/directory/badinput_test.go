package directory_test

// The bad input of issue 11: an unknown account, an unreachable server, a
// certificate that does not verify, a master user without the right to
// reset, a password policy that refuses the password. Each fails the
// rotation with an error that names the secret, the account and the
// reason, and leaves the account's working password as it was.

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/password"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// failsCleanly rotates f's secret once, expecting a refusal that names the
// secret, the account and every word of want, and shows no password; every
// version stays as it was, and AWSCURRENT still logs in.
func (s server) failsCleanly(t *testing.T, h *dbtest.Harness, f fixture, acct string, want []string, secrets ...string) error {
	t.Helper()
	before := versions(t, h.Em, f.arn)
	token, err := rotateOnce(t, h, f.arn)
	refusal(t, err, append([]string{f.arn, acct}, want...), append(secrets, f.password, f.masterP)...)
	t.Logf("refused: %v", err)
	unchanged(t, h.Em, f.arn, token, before)
	user, pw := current(t, h.Em, f.arn, "AWSCURRENT")
	if err := s.login(t, user, pw); err != nil {
		t.Fatalf("AWSCURRENT no longer logs in after a refused rotation: %v", err)
	}
	h.AssertNoSecretInLogs(append(secrets, f.password, f.masterP)...)
	return err
}

func TestBadInputUnknownAccount(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			em := testbed.Emulator(t)
			cfg := s.config(t)
			h := dbtest.NewHarness(t, target(cfg, testbed.AWSConfig(t)))
			// A single account that does not exist: nothing logs in as it.
			rdn := map[directory.Kind]string{directory.LDAP: "uid=", directory.ActiveDirectory: "CN="}[cfg.Kind]
			nobody := rdn + dirtest.Name("nobody") + "," + cfg.BaseDNs[0]
			f := s.newFixture(t, em, single, map[string]any{"username": nobody})
			before := versions(t, em, f.arn)
			token, err := rotateOnce(t, h, f.arn)
			refusal(t, err, []string{f.arn, nobody, "cannot log in as " + nobody}, f.password)
			if !errors.Is(err, account.ErrCannotLogIn) {
				t.Fatalf("want a refused login, got %v", err)
			}
			unchanged(t, em, f.arn, token, before)

			// Alternating accounts whose second account does not exist:
			// the master user does not create directory accounts.
			f = s.newFixture(t, em, singleByMaster, nil)
			f.arn = testbed.CreateSecret(t, em, secretJSON(t, map[string]any{"username": f.base, "password": f.password, "masterarn": f.masterARN}))
			err = s.failsCleanly(t, h, f, "_clone", []string{"the alternating account does not exist", "create both accounts"})
			if !errors.Is(err, directory.ErrNoClone) {
				t.Fatalf("want ErrNoClone, got %v", err)
			}
		})
	}
}

func TestBadInputUnreachableServer(t *testing.T) {
	l := dbtest.ListenLoopback(t)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			em := testbed.Emulator(t)
			h := dbtest.NewHarness(t, target(s.config(t, "DIRECTORY_URL", "ldaps://127.0.0.1:"+strconv.Itoa(port)), testbed.AWSConfig(t)))
			f := s.newFixture(t, em, single, nil)
			err := s.failsCleanly(t, h, f, f.base, []string{"cannot reach ldaps://127.0.0.1:" + strconv.Itoa(port), "refused"})
			if !errors.Is(err, account.ErrCannotReach) {
				t.Fatalf("want a cannot-reach error, got %v", err)
			}
		})
	}
}

// TestBadInputCertificateDoesNotVerify: without the test CA in
// DIRECTORY_CA_BUNDLE the server's certificate does not verify, and no
// password is sent: the directory logs no bind of the account.
func TestBadInputCertificateDoesNotVerify(t *testing.T) {
	for _, s := range servers(t) {
		for _, st := range []strategy{single, alternating} {
			t.Run(s.name+"/"+string(st), func(t *testing.T) {
				em := testbed.Emulator(t)
				h := dbtest.NewHarness(t, target(s.config(t, "DIRECTORY_CA_BUNDLE", ""), testbed.AWSConfig(t)))
				f := s.newFixture(t, em, st, nil)
				refused := s.refused(t)
				masterBinds := s.masterBinds(t)
				err := s.failsCleanly(t, h, f, f.base, []string{"cannot reach", "certificate"})
				if !errors.Is(err, account.ErrCannotReach) {
					t.Fatalf("want a cannot-reach error, got %v", err)
				}
				if n := masterBinds(); n != 0 {
					t.Fatalf("the master user logged in %d times", n)
				}
				if n := refused(f.names()...); n != 0 {
					t.Fatalf("the server logged %d refused logins", n)
				}
			})
		}
	}
}

// TestBadInputMasterMayNotReset: the configuration allows a subtree where
// the master user has no right to reset passwords.
func TestBadInputMasterMayNotReset(t *testing.T) {
	for _, s := range servers(t) {
		for _, st := range []strategy{singleByMaster, alternating} {
			t.Run(s.name+"/"+string(st), func(t *testing.T) {
				em := testbed.Emulator(t)
				outside := s.outside(t, dirtest.Name("svc"), dirtest.Password())
				cfg := s.config(t, "DIRECTORY_ALLOWED_BASE_DNS", s.env["DIRECTORY_ALLOWED_BASE_DNS"]+";"+outside[strings.IndexByte(outside, ',')+1:])
				h := dbtest.NewHarness(t, target(cfg, testbed.AWSConfig(t)))
				// The pair lives where the master may not reset.
				f := s.newFixture(t, em, st, nil)
				f.baseCN = dirtest.Name("svc")
				base := s.outside(t, f.baseCN, f.password)
				acct := base
				if st == alternating {
					clonePW := dirtest.Password()
					acct = s.outside(t, f.baseCN+"_clone", clonePW)
					defer func() {
						if err := s.login(t, acct, clonePW); err != nil {
							t.Fatalf("the clone's password changed: %v", err)
						}
					}()
				}
				fields := map[string]any{"username": base, "password": f.password, "masterarn": f.masterARN}
				if st == singleByMaster {
					fields["strategy"] = "single"
				}
				f.arn = testbed.CreateSecret(t, em, secretJSON(t, fields))
				err := s.failsCleanly(t, h, f, acct, []string{"insufficient access rights"})
				if !errors.Is(err, directory.ErrNotPermitted) {
					t.Fatalf("want ErrNotPermitted, got %v", err)
				}
			})
		}
	}
}

// TestBadInputPasswordPolicy: the directory's password policy refuses the
// new password. The refusal names the account and gives the directory's
// reason; the account keeps its password.
func TestBadInputPasswordPolicy(t *testing.T) {
	slapd, samba := slapdServer(t), sambaServer(t)
	weak := func(cfg directory.Config) directory.Config {
		// Only small letters: a policy ConfigFromEnv refuses for Active
		// Directory, set here to make the DC judge it.
		cfg.Password = password.Policy{Length: 16, ExcludeUppercase: true, ExcludeNumbers: true, ExcludePunctuation: true, RequireEachIncludedType: true}
		return cfg
	}
	for _, c := range []struct {
		name   string
		s      server
		cfg    func(server) directory.Config
		st     strategy
		setup  func(t *testing.T, s server, f *fixture)
		reason []string
	}{
		{name: "OpenLDAP quality (PASSWORD_LENGTH=8, ppolicy wants 12)", s: slapd, st: single,
			cfg:    func(s server) directory.Config { return s.config(t, "PASSWORD_LENGTH", "8") },
			reason: []string{"password change of", "does not meet the password policy"}},
		{name: "OpenLDAP quality, reset by the master", s: slapd, st: alternating,
			cfg:    func(s server) directory.Config { return s.config(t, "PASSWORD_LENGTH", "8") },
			reason: []string{"password reset of", "does not meet the password policy"}},
		{name: "AD complexity", s: samba, st: single,
			cfg:    func(s server) directory.Config { return weak(s.config(t)) },
			reason: []string{"password change of", "0000052D", "complexity"}},
		{name: "AD complexity, reset by the master", s: samba, st: singleByMaster,
			cfg:    func(s server) directory.Config { return weak(s.config(t)) },
			reason: []string{"password reset of", "0000052D", "complexity"}},
		{name: "AD minimum password age of the account's own change", s: samba, st: single,
			cfg: func(s server) directory.Config { return s.config(t) },
			setup: func(t *testing.T, s server, f *fixture) {
				sb := dirtest.LoadSamba(t)
				sb.AddToGroup(t, sb.MinAgeGroupDN, f.base)
			},
			reason: []string{"password change of", "0000052D", "minimum age"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			em := testbed.Emulator(t)
			h := dbtest.NewHarness(t, target(c.cfg(c.s), testbed.AWSConfig(t)))
			f := c.s.newFixture(t, em, c.st, nil)
			if c.setup != nil {
				c.setup(t, c.s, &f)
			}
			acct := f.base
			if c.st == alternating {
				acct = f.clone
			}
			err := c.s.failsCleanly(t, h, f, acct, c.reason)
			if !errors.Is(err, directory.ErrPasswordPolicy) {
				t.Fatalf("want ErrPasswordPolicy, got %v", err)
			}
		})
	}

	// The history: a pending version that a writer filled with the
	// account's previous password (a "rollback" by hand) is refused by the
	// directory, and the current password stays.
	for _, s := range servers(t) {
		t.Run(s.name+" history", func(t *testing.T) {
			em := testbed.Emulator(t)
			h := dbtest.NewHarness(t, target(s.config(t), testbed.AWSConfig(t)))
			f := s.newFixture(t, em, single, nil)
			if _, err := rotateOnce(t, h, f.arn); err != nil {
				t.Fatal(err)
			}
			_, cur := current(t, em, f.arn, "AWSCURRENT")
			token := h.Open(f.arn)
			if _, err := em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(f.arn), ClientRequestToken: aws.String(token), VersionStages: []string{"AWSPENDING"},
				SecretString: aws.String(secretJSON(t, map[string]any{"username": f.base, "password": f.password})),
			}); err != nil {
				t.Fatal(err)
			}
			err := h.Step(nil, "setSecret", f.arn, token)
			refusal(t, err, []string{f.arn, f.base, "password change of", "does not meet the password policy"}, f.password, cur)
			if !errors.Is(err, directory.ErrPasswordPolicy) {
				t.Fatalf("want ErrPasswordPolicy, got %v", err)
			}
			if err := s.login(t, f.base, cur); err != nil {
				t.Fatalf("AWSCURRENT no longer logs in: %v", err)
			}
		})
	}
}
