package directory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
)

func TestOpenLDAPBindOverVerifiedTLS(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	pw := dirtest.Password()
	dn := s.AddAccount(t, s.ServicesOU(), pw, "")
	for _, sec := range []directory.Security{directory.LDAPS, directory.StartTLS} {
		t.Run(string(sec), func(t *testing.T) {
			ep := s.Endpoint(t, sec)
			c := mustConnect(t, ep, dn, pw)
			if err := c.Probe(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if c.Account() != dn {
				t.Fatalf("Account() = %q, want %q", c.Account(), dn)
			}
		})
	}
}

func TestOpenLDAPRefusedBindIsCannotLogIn(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	pw := dirtest.Password()
	dn := s.AddAccount(t, s.ServicesOU(), pw, "")
	mark := dirtest.MarkSlapdLog(t, s)
	wrong := dirtest.Password()
	_, err := directory.Connect(testCtx(t), s.Endpoint(t, directory.LDAPS), dn, wrong)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
	noSecret(t, err, wrong)
	var r *directory.Refusal
	if !errors.As(err, &r) || r.Code != 49 {
		t.Fatalf("refusal %v: want LDAP result 49", err)
	}
	// The server logged exactly that one refused bind.
	if got := mark.FailedBinds(t); got[strings.ToLower(dn)] != 1 || len(got) != 1 {
		t.Fatalf("slapd's log shows refused binds %v, want one for %s", got, dn)
	}
	// An unknown account reads the same: the directory does not say.
	_, err = directory.Connect(testCtx(t), s.Endpoint(t, directory.LDAPS), "uid=nobody,"+s.ServicesOU(), wrong)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
}

func TestOpenLDAPUnreachableIsCannotReach(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	ep := s.Endpoint(t, directory.LDAPS)
	ep.Port = 1 // nothing listens on tcpmux
	_, err := directory.Connect(testCtx(t), ep, s.RotatorDN, s.RotatorPassword)
	wantKind(t, err, dbsecret.ErrCannotReach, nil)
	noSecret(t, err, s.RotatorPassword)
}

func TestOpenLDAPCertificateThatDoesNotVerify(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	for _, sec := range []directory.Security{directory.LDAPS, directory.StartTLS} {
		t.Run(string(sec)+"/unknown CA", func(t *testing.T) {
			mark := dirtest.MarkSlapdLog(t, s)
			ep := s.Endpoint(t, sec)
			ep.TLS = strangerTLS(t, s.Host)
			_, err := directory.Connect(testCtx(t), ep, s.RotatorDN, s.RotatorPassword)
			wantKind(t, err, dbsecret.ErrCannotReach, nil)
			if !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("error %v does not say the certificate failed", err)
			}
			noSecret(t, err, s.RotatorPassword)
			if n := mark.Binds(t); n != 0 {
				t.Fatalf("the server saw %d binds: the password was sent before the certificate verified", n)
			}
		})
		t.Run(string(sec)+"/wrong name", func(t *testing.T) {
			ep := s.Endpoint(t, sec)
			ep.TLS.ServerName = "ldap.elsewhere.example"
			_, err := directory.Connect(testCtx(t), ep, s.RotatorDN, s.RotatorPassword)
			wantKind(t, err, dbsecret.ErrCannotReach, nil)
		})
	}
}

func TestOpenLDAPPlaintextOnlyWhenConfigurationAllows(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	pw := dirtest.Password()
	dn := s.AddAccount(t, s.ServicesOU(), pw, "")
	ep := s.Endpoint(t, directory.Plaintext)
	ep.TLS = nil

	mark := dirtest.MarkSlapdLog(t, s)
	_, err := directory.Connect(testCtx(t), ep, dn, pw)
	if !errors.Is(err, directory.ErrPlaintextRefused) {
		t.Fatalf("plaintext without the configuration's consent: %v, want ErrPlaintextRefused", err)
	}
	if n := mark.Binds(t); n != 0 {
		t.Fatalf("the server saw %d binds from a refused plaintext connection", n)
	}

	sec, err := directory.ParseSecurity("plaintext", false)
	if err == nil || !errors.Is(err, directory.ErrPlaintextRefused) {
		t.Fatalf("ParseSecurity(plaintext, not allowed) = %q, %v", sec, err)
	}
	sec, err = directory.ParseSecurity("plaintext", true)
	if err != nil || sec != directory.Plaintext {
		t.Fatalf("ParseSecurity(plaintext, allowed) = %q, %v", sec, err)
	}
	ep.Security, ep.AllowPlaintext = sec, true
	works(t, ep, dn, pw)
}

func TestOpenLDAPSetOwnPassword(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	old := dirtest.Password()
	dn := s.AddAccount(t, s.ServicesOU(), old, "")
	ep := s.Endpoint(t, directory.StartTLS)
	c := mustConnect(t, ep, dn, old)
	next := dirtest.Password()
	if err := c.SetOwnPassword(testCtx(t), dn, next); err != nil {
		t.Fatal(err)
	}
	works(t, ep, dn, next)
	refused(t, ep, dn, old)
	// The session goes on with the new password as the old one.
	third := dirtest.Password()
	if err := c.SetOwnPassword(testCtx(t), dn, third); err != nil {
		t.Fatal(err)
	}
	works(t, ep, dn, third)
	// A session may not change another account's password as its own.
	other := s.AddAccount(t, s.ServicesOU(), dirtest.Password(), "")
	if err := c.SetOwnPassword(testCtx(t), other, dirtest.Password()); err == nil {
		t.Fatal("SetOwnPassword changed another account's password")
	}
}

func TestOpenLDAPWrongOldPassword(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	old := dirtest.Password()
	dn := s.AddAccount(t, s.ServicesOU(), old, "")
	ep := s.Endpoint(t, directory.LDAPS)
	c := mustConnect(t, ep, dn, old)
	// Someone else changes the password after the session bound.
	rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)
	theirs := dirtest.Password()
	if err := rot.SetPassword(testCtx(t), dn, theirs); err != nil {
		t.Fatal(err)
	}
	next := dirtest.Password()
	err := c.SetOwnPassword(testCtx(t), dn, next)
	wantRefusal(t, err, dn, directory.ErrWrongPassword)
	noSecret(t, err, old, next, theirs)
	works(t, ep, dn, theirs)
}

func TestOpenLDAPPolicyRefusesPassword(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	ep := s.Endpoint(t, directory.LDAPS)
	t.Run("quality", func(t *testing.T) {
		old := dirtest.Password()
		dn := s.AddAccount(t, s.ServicesOU(), old, "")
		c := mustConnect(t, ep, dn, old)
		err := c.SetOwnPassword(testCtx(t), dn, "short1")
		wantRefusal(t, err, dn, directory.ErrPasswordPolicy)
		noSecret(t, err, old, "short1")
		works(t, ep, dn, old)
		// The policy binds the password administrator too.
		rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)
		wantRefusal(t, rot.SetPassword(testCtx(t), dn, "short1"), dn, directory.ErrPasswordPolicy)
		works(t, ep, dn, old)
	})
	t.Run("history", func(t *testing.T) {
		first := dirtest.Password()
		dn := s.AddAccount(t, s.ServicesOU(), first, "")
		c := mustConnect(t, ep, dn, first)
		second := dirtest.Password()
		if err := c.SetOwnPassword(testCtx(t), dn, second); err != nil {
			t.Fatal(err)
		}
		err := c.SetOwnPassword(testCtx(t), dn, first)
		r := wantRefusal(t, err, dn, directory.ErrPasswordPolicy)
		if !strings.Contains(r.Diagnostic, "history") {
			t.Fatalf("refusal %v does not give the server's reason", err)
		}
		noSecret(t, err, first, second)
		works(t, ep, dn, second)
	})
	t.Run("minimum age", func(t *testing.T) {
		old := dirtest.Password()
		dn := s.AddAccount(t, s.ServicesOU(), old, s.PolicyDN("minage"))
		c := mustConnect(t, ep, dn, old)
		err := c.SetOwnPassword(testCtx(t), dn, dirtest.Password())
		wantRefusal(t, err, dn, directory.ErrPasswordPolicy)
		works(t, ep, dn, old)
	})
}

func TestOpenLDAPReset(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	ep := s.Endpoint(t, directory.LDAPS)
	rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)

	old := dirtest.Password()
	svc := s.AddAccount(t, s.ServicesOU(), old, "")
	next := dirtest.Password()
	if err := rot.SetPassword(testCtx(t), svc, next); err != nil {
		t.Fatal(err)
	}
	works(t, ep, svc, next)
	refused(t, ep, svc, old)

	// An account the rotator may not reset keeps its password.
	mine := dirtest.Password()
	person := s.AddAccount(t, s.PeopleOU(), mine, "")
	attempt := dirtest.Password()
	err := rot.SetPassword(testCtx(t), person, attempt)
	wantRefusal(t, err, person, directory.ErrNotPermitted)
	noSecret(t, err, attempt, s.RotatorPassword)
	works(t, ep, person, mine)

	// An account that does not exist.
	err = rot.SetPassword(testCtx(t), "uid=nobody,"+s.ServicesOU(), attempt)
	wantRefusal(t, err, "uid=nobody", directory.ErrNoSuchAccount)
}

func TestOpenLDAPEnsureClone(t *testing.T) {
	s := dirtest.LoadSlapd(t)
	ep := s.Endpoint(t, directory.LDAPS)
	rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)
	orig := s.AddAccount(t, s.ServicesOU(), dirtest.Password(), "")

	err := rot.EnsureClone(testCtx(t), orig, "uid=missing-clone,"+s.ServicesOU(), dirtest.Password())
	if !errors.Is(err, directory.ErrNoClone) || !errors.Is(err, directory.ErrNoSuchAccount) {
		t.Fatalf("EnsureClone of a missing account: %v, want ErrNoClone", err)
	}

	clone := s.AddAccount(t, s.ServicesOU(), dirtest.Password(), "")
	pw := dirtest.Password()
	for range 2 { // running it twice is harmless
		if err := rot.EnsureClone(testCtx(t), orig, clone, pw); err != nil {
			t.Fatal(err)
		}
	}
	works(t, ep, clone, pw)
}
