package directory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
)

func TestADBindAndKerberos(t *testing.T) {
	s := dirtest.LoadSamba(t)
	pw := dirtest.Password()
	u := s.AddUser(t, s.ServicesOU, pw)
	ep := s.Endpoint(t)
	mark := dirtest.MarkSambaLog(t, s)
	c := mustConnect(t, ep, u.DN, pw)
	// Probe reads the entry and obtains a Kerberos TGT with the password.
	if err := c.Probe(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := directory.KerberosLogin(testCtx(t), ep.Kerberos, ep.Timeout, u.SAMAccountName, pw); err != nil {
		t.Fatal(err)
	}
	// The DC logged the bind and the Kerberos logins, and refused none.
	var ldapOK, krbOK int
	for _, a := range mark.Read(t) {
		if a.Status != "NT_STATUS_OK" {
			t.Errorf("the DC logged a refused authentication: %v", a)
			continue
		}
		switch {
		case a.Service == "LDAP" && strings.Contains(a.Account, u.SAMAccountName):
			ldapOK++
		case a.Service == "Kerberos KDC" && strings.Contains(a.Account, u.SAMAccountName):
			krbOK++
		}
	}
	if ldapOK != 1 || krbOK != 2 {
		t.Fatalf("the DC logged %d LDAP and %d Kerberos logins of %s, want 1 and 2", ldapOK, krbOK, u.SAMAccountName)
	}
}

func TestADRefusedBindCarriesADCode(t *testing.T) {
	s := dirtest.LoadSamba(t)
	pw := dirtest.Password()
	u := s.AddUser(t, s.ServicesOU, pw)
	ep := s.Endpoint(t)
	wrong := dirtest.Password()

	mark := dirtest.MarkSambaLog(t, s)
	_, err := directory.Connect(testCtx(t), ep, u.DN, wrong)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
	noSecret(t, err, wrong)
	var r *directory.Refusal
	if !errors.As(err, &r) || r.Code != 49 || r.ADCode != "52e" {
		t.Fatalf("refusal %v: want LDAP result 49 with AD code 52e", err)
	}
	failed := mark.Failed(t)
	if len(failed) != 1 || failed[0].Status != "NT_STATUS_WRONG_PASSWORD" {
		t.Fatalf("the DC logged refusals %v, want one NT_STATUS_WRONG_PASSWORD", failed)
	}

	// Kerberos says the same.
	err = directory.KerberosLogin(testCtx(t), ep.Kerberos, ep.Timeout, u.SAMAccountName, wrong)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
	noSecret(t, err, wrong)

	// A disabled account: AD code 533, the account is unusable.
	s.Disable(t, u.DN)
	_, err = directory.Connect(testCtx(t), ep, u.DN, pw)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrAccountUnusable)
	if !errors.As(err, &r) || r.ADCode != "533" {
		t.Fatalf("refusal %v: want AD code 533", err)
	}
	err = directory.KerberosLogin(testCtx(t), ep.Kerberos, ep.Timeout, u.SAMAccountName, pw)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrAccountUnusable)

	// No such principal.
	err = directory.KerberosLogin(testCtx(t), ep.Kerberos, ep.Timeout, dirtest.Name("nobody"), wrong)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrNoSuchAccount)
}

func TestADOnlyOverVerifiedLDAPS(t *testing.T) {
	s := dirtest.LoadSamba(t)
	for _, sec := range []directory.Security{directory.StartTLS, directory.Plaintext} {
		ep := s.Endpoint(t)
		ep.Security, ep.Port, ep.AllowPlaintext = sec, 389, true
		if _, err := directory.Connect(testCtx(t), ep, s.RotatorDN, s.RotatorPassword); err == nil || !strings.Contains(err.Error(), "LDAPS only") {
			t.Fatalf("Active Directory over %s: %v, want a refusal before connecting", sec, err)
		}
	}
	t.Run("unknown CA", func(t *testing.T) {
		mark := dirtest.MarkSambaLog(t, s)
		ep := s.Endpoint(t)
		ep.TLS = strangerTLS(t, s.Host)
		_, err := directory.Connect(testCtx(t), ep, s.RotatorDN, s.RotatorPassword)
		wantKind(t, err, dbsecret.ErrCannotReach, nil)
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("error %v does not say the certificate failed", err)
		}
		if got := mark.Read(t); len(got) != 0 {
			t.Fatalf("the DC saw authentications %v before the certificate verified", got)
		}
	})
	t.Run("no Kerberos realm", func(t *testing.T) {
		ep := s.Endpoint(t)
		ep.Kerberos = directory.Kerberos{}
		if _, err := directory.Connect(testCtx(t), ep, s.RotatorDN, s.RotatorPassword); err == nil {
			t.Fatal("an Active Directory endpoint without a Kerberos realm was accepted")
		}
	})
}

func TestADSetOwnPassword(t *testing.T) {
	s := dirtest.LoadSamba(t)
	old := dirtest.Password()
	u := s.AddUser(t, s.ServicesOU, old)
	ep := s.Endpoint(t)
	c := mustConnect(t, ep, u.DN, old)
	next := dirtest.Password()
	if err := c.SetOwnPassword(testCtx(t), u.DN, next); err != nil {
		t.Fatal(err)
	}
	works(t, ep, u.DN, next) // bind and Kerberos
	// Kerberos refuses the old password at once; an LDAP simple bind
	// (NTLM's path in the DC) still accepts the previous password for "old
	// password allowed period" (smb.conf, 60 minutes by default) after a
	// change or a reset, as Windows does for NTLM with
	// OldPasswordAllowedPeriod.
	err := directory.KerberosLogin(testCtx(t), ep.Kerberos, ep.Timeout, u.SAMAccountName, old)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
	if c, err := directory.Connect(testCtx(t), ep, u.DN, old); err != nil {
		t.Fatalf("the old password no longer binds within the DC's old password allowed period: %v", err)
	} else {
		c.Close()
	}
	// The same step again does nothing.
	if err := c.SetOwnPassword(testCtx(t), u.DN, next); err != nil {
		t.Fatal(err)
	}
}

func TestADWrongOldPassword(t *testing.T) {
	s := dirtest.LoadSamba(t)
	old := dirtest.Password()
	u := s.AddUser(t, s.ServicesOU, old)
	ep := s.Endpoint(t)
	c := mustConnect(t, ep, u.DN, old)
	rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)
	theirs := dirtest.Password()
	if err := rot.SetPassword(testCtx(t), u.DN, theirs); err != nil {
		t.Fatal(err)
	}
	next := dirtest.Password()
	err := c.SetOwnPassword(testCtx(t), u.DN, next)
	wantRefusal(t, err, u.DN, directory.ErrWrongPassword)
	noSecret(t, err, old, next, theirs)
	works(t, ep, u.DN, theirs)
}

func TestADPolicyRefusesPassword(t *testing.T) {
	s := dirtest.LoadSamba(t)
	ep := s.Endpoint(t)
	t.Run("complexity", func(t *testing.T) {
		old := dirtest.Password()
		u := s.AddUser(t, s.ServicesOU, old)
		c := mustConnect(t, ep, u.DN, old)
		simple := "onlysmallletters"
		err := c.SetOwnPassword(testCtx(t), u.DN, simple)
		r := wantRefusal(t, err, u.DN, directory.ErrPasswordPolicy)
		if r.ADCode != "0000052D" {
			t.Fatalf("refusal %v: want AD code 0000052D", err)
		}
		noSecret(t, err, old, simple)
		works(t, ep, u.DN, old)
		// A reset is held to complexity too.
		rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)
		wantRefusal(t, rot.SetPassword(testCtx(t), u.DN, simple), u.DN, directory.ErrPasswordPolicy)
		works(t, ep, u.DN, old)
	})
	t.Run("history", func(t *testing.T) {
		first := dirtest.Password()
		u := s.AddUser(t, s.ServicesOU, first)
		c := mustConnect(t, ep, u.DN, first)
		second := dirtest.Password()
		if err := c.SetOwnPassword(testCtx(t), u.DN, second); err != nil {
			t.Fatal(err)
		}
		err := c.SetOwnPassword(testCtx(t), u.DN, first)
		wantRefusal(t, err, u.DN, directory.ErrPasswordPolicy)
		noSecret(t, err, first, second)
		works(t, ep, u.DN, second)
	})
	t.Run("minimum age", func(t *testing.T) {
		old := dirtest.Password()
		u := s.AddUser(t, s.ServicesOU, old)
		s.AddToGroup(t, s.MinAgeGroupDN, u.DN)
		c := mustConnect(t, ep, u.DN, old)
		err := c.SetOwnPassword(testCtx(t), u.DN, dirtest.Password())
		wantRefusal(t, err, u.DN, directory.ErrPasswordPolicy)
		works(t, ep, u.DN, old)
	})
}

func TestADReset(t *testing.T) {
	s := dirtest.LoadSamba(t)
	ep := s.Endpoint(t)
	rot := mustConnect(t, ep, s.RotatorDN, s.RotatorPassword)

	old := dirtest.Password()
	svc := s.AddUser(t, s.ServicesOU, old)
	next := dirtest.Password()
	if err := rot.SetPassword(testCtx(t), svc.DN, next); err != nil {
		t.Fatal(err)
	}
	works(t, ep, svc.DN, next)
	// As after a change of its own (TestADSetOwnPassword), Kerberos
	// refuses the previous password at once and an LDAP simple bind still
	// accepts it within the old password allowed period.
	err := directory.KerberosLogin(testCtx(t), ep.Kerberos, ep.Timeout, svc.SAMAccountName, old)
	wantKind(t, err, dbsecret.ErrCannotLogIn, directory.ErrWrongPassword)
	mustConnect(t, ep, svc.DN, old)
	// A reset run again is harmless.
	if err := rot.SetPassword(testCtx(t), svc.DN, next); err != nil {
		t.Fatal(err)
	}
	works(t, ep, svc.DN, next)

	// An account outside the delegated OU keeps its password.
	mine := dirtest.Password()
	other := s.AddUser(t, s.UsersCN(), mine)
	attempt := dirtest.Password()
	err = rot.SetPassword(testCtx(t), other.DN, attempt)
	wantRefusal(t, err, other.DN, directory.ErrNotPermitted)
	noSecret(t, err, attempt, s.RotatorPassword)
	works(t, ep, other.DN, mine)

	// Alternating accounts: the clone must exist.
	err = rot.EnsureClone(testCtx(t), svc.DN, "CN=missing-clone,"+s.ServicesOU, attempt)
	if !errors.Is(err, directory.ErrNoClone) {
		t.Fatalf("EnsureClone of a missing account: %v, want ErrNoClone", err)
	}
	clone := s.AddUser(t, s.ServicesOU, dirtest.Password())
	pw := dirtest.Password()
	if err := rot.EnsureClone(testCtx(t), svc.DN, clone.DN, pw); err != nil {
		t.Fatal(err)
	}
	works(t, ep, clone.DN, pw)
}
