package directory

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestUnicodePwdIsQuotedUTF16LE(t *testing.T) {
	got := []byte(unicodePwd("aé€"))
	want := []byte{'"', 0, 'a', 0, 0xe9, 0, 0xac, 0x20, '"', 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("unicodePwd = % x, want % x", got, want)
	}
	// A character outside the BMP becomes a surrogate pair.
	if n := len(unicodePwd("😀")); n != 2*4 {
		t.Fatalf("unicodePwd of one astral character is %d bytes, want 8", n)
	}
}

func TestRefusalReasons(t *testing.T) {
	cases := []struct {
		op     string
		code   uint16
		diag   string
		kind   error
		adCode string
	}{
		{opBind, 49, "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 52e, v3839", ErrWrongPassword, "52e"},
		{opBind, 49, "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 775, v3839", ErrAccountUnusable, "775"},
		{opBind, 49, "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 532, v3839", ErrAccountUnusable, "532"},
		{opBind, 49, "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 773, v3839", ErrAccountUnusable, "773"},
		{opBind, 49, "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 525, v3839", ErrNoSuchAccount, "525"},
		{opBind, 49, "", ErrWrongPassword, ""},
		{opBind, 8, "BindSimple: Transport encryption required.", nil, ""},
		{opChange, 19, "0000052D: Constraint violation - check_password_restrictions: the password is too short", ErrPasswordPolicy, "0000052D"},
		{opChange, 53, "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM)", ErrPasswordPolicy, "0000052D"},
		{opChange, 19, "00000056: Constraint violation - check_password_restrictions: the old password is wrong", ErrWrongPassword, "00000056"},
		{opReset, 50, "00002098: Object CN=x has no write property access", ErrNotPermitted, "00002098"},
		{opChange, 19, "Password is in history of old passwords", ErrPasswordPolicy, ""},
		{opChange, 53, "unwilling to verify old password", ErrWrongPassword, ""},
		{opReset, 50, "", ErrNotPermitted, ""},
		{opReset, 32, "", ErrNoSuchAccount, ""},
	}
	for _, c := range cases {
		err := &ldap.Error{ResultCode: c.code, Err: errors.New(c.diag)}
		r := refusal(err, c.op, "cn=svc", "ldaps://dc:636")
		if r == nil {
			t.Fatalf("%s %d %q: no refusal", c.op, c.code, c.diag)
		}
		if c.kind != nil && !errors.Is(r, c.kind) || c.kind == nil && r.kind != nil {
			t.Errorf("%s %d %q: kind %v, want %v", c.op, c.code, c.diag, r.kind, c.kind)
		}
		if r.ADCode != c.adCode {
			t.Errorf("%s %d %q: AD code %q, want %q", c.op, c.code, c.diag, r.ADCode, c.adCode)
		}
		if !strings.Contains(r.Error(), "cn=svc") || r.Reason == "" {
			t.Errorf("refusal %q names no account or reason", r)
		}
	}
	// A client-side error (network, empty password) is no refusal.
	if r := refusal(ldap.NewError(ldap.ErrorNetwork, errors.New("EOF")), opBind, "cn=svc", "x"); r != nil {
		t.Fatalf("a network error became a refusal: %v", r)
	}
	if r := refusal(fmt.Errorf("plain"), opBind, "cn=svc", "x"); r != nil {
		t.Fatalf("a plain error became a refusal: %v", r)
	}
}

func TestServerTextLosesPasswords(t *testing.T) {
	// A hostile server may echo what it was sent.
	err := &ldap.Error{ResultCode: 19, Err: errors.New("password Aa1-secret-new is in history, old was Aa1-secret-old")}
	r := refusal(err, opChange, "cn=svc", "x", "Aa1-secret-old", "Aa1-secret-new")
	if s := r.Error(); strings.Contains(s, "Aa1-secret") {
		t.Fatalf("refusal carries a password: %s", s)
	}
	long := strings.Repeat("x", 1000)
	if got := redact(long); len(got) > 310 {
		t.Fatalf("redact kept %d characters", len(got))
	}
}

func TestParseSecurity(t *testing.T) {
	for _, c := range []struct {
		in    string
		allow bool
		want  Security
		ok    bool
	}{
		{"", false, LDAPS, true},
		{"ldaps", false, LDAPS, true},
		{"starttls", false, StartTLS, true},
		{"plaintext", false, "", false},
		{"plaintext", true, Plaintext, true},
		{"none", true, "", false},
		{"LDAPS", false, "", false},
	} {
		got, err := ParseSecurity(c.in, c.allow)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSecurity(%q, %v) = %q, %v", c.in, c.allow, got, err)
		}
	}
}

func TestEndpointValidate(t *testing.T) {
	tc := &tls.Config{ServerName: "dc1.example.test"}
	krb := Kerberos{Realm: "EXAMPLE.TEST", KDCs: []string{"dc1.example.test:88"}}
	good := []Endpoint{
		{Kind: LDAP, Host: "h", TLS: tc},
		{Kind: LDAP, Host: "h", Security: StartTLS, TLS: tc},
		{Kind: LDAP, Host: "h", Security: Plaintext, AllowPlaintext: true},
		{Kind: ActiveDirectory, Host: "h", TLS: tc, Kerberos: krb},
	}
	for _, e := range good {
		if err := e.Validate(); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
	bad := map[string]Endpoint{
		"no host":            {Kind: LDAP, TLS: tc},
		"no kind":            {Host: "h", TLS: tc},
		"no TLS":             {Kind: LDAP, Host: "h"},
		"unverified TLS":     {Kind: LDAP, Host: "h", TLS: &tls.Config{ServerName: "h", InsecureSkipVerify: true}},
		"no server name":     {Kind: LDAP, Host: "h", TLS: &tls.Config{}},
		"plaintext not let":  {Kind: LDAP, Host: "h", Security: Plaintext},
		"AD over StartTLS":   {Kind: ActiveDirectory, Host: "h", Security: StartTLS, TLS: tc, Kerberos: krb},
		"AD in plaintext":    {Kind: ActiveDirectory, Host: "h", Security: Plaintext, AllowPlaintext: true, Kerberos: krb},
		"AD without realm":   {Kind: ActiveDirectory, Host: "h", TLS: tc, Kerberos: Kerberos{KDCs: krb.KDCs}},
		"AD realm injection": {Kind: ActiveDirectory, Host: "h", TLS: tc, Kerberos: Kerberos{Realm: "A\n[realms]", KDCs: krb.KDCs}},
		"AD KDC injection":   {Kind: ActiveDirectory, Host: "h", TLS: tc, Kerberos: Kerberos{Realm: "A", KDCs: []string{"h }\n kdc = evil"}}},
		"AD without KDC":     {Kind: ActiveDirectory, Host: "h", TLS: tc, Kerberos: Kerberos{Realm: "A"}},
		"port out of range":  {Kind: LDAP, Host: "h", Port: 70000, TLS: tc},
		"unknown security":   {Kind: LDAP, Host: "h", Security: "ssl", TLS: tc},
	}
	for name, e := range bad {
		if err := e.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if a := (Endpoint{Host: "h"}).Addr(); a != "h:636" {
		t.Errorf("default LDAPS address %s", a)
	}
	if a := (Endpoint{Host: "h", Security: StartTLS}).Addr(); a != "h:389" {
		t.Errorf("default StartTLS address %s", a)
	}
}

func TestSameDN(t *testing.T) {
	if !sameDN("CN=Svc,OU=ServiceAccounts,DC=example,DC=test", "cn=svc, ou=serviceaccounts,dc=EXAMPLE,dc=test") {
		t.Error("equal DNs compare different")
	}
	if sameDN("cn=svc,dc=example", "cn=svc2,dc=example") {
		t.Error("different DNs compare equal")
	}
}
