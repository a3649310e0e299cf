package dirtest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// Name is a unique account name with prefix.
func Name(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Password is a random password that meets AD complexity and OpenLDAP's
// quality check: capital, small letter, digit, symbol, 28 characters.
func Password() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "Aa1-" + hex.EncodeToString(b)
}

// Admin binds to the server as its admin (the rootdn) over LDAPS: fixture
// set-up only, never the code under test.
func (s Slapd) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	return adminBind(t, s.Host+":"+s.TLSPort, s.Host, s.CAFile, s.AdminDN, s.AdminPassword)
}

// AddAccount adds a service account under ou with password and returns its
// DN; the test's cleanup deletes it. policy, when not empty, is the DN of
// the ppolicy entry that governs it (pwdPolicySubentry).
func (s Slapd) AddAccount(t testing.TB, ou, password, policy string) string {
	t.Helper()
	return s.AddAccountNamed(t, ou, Name("svc-"), password, policy)
}

// AddAccountNamed is AddAccount with the account's uid (its RDN value).
func (s Slapd) AddAccountNamed(t testing.TB, ou, name, password, policy string) string {
	t.Helper()
	dn := "uid=" + name + "," + ou
	l := s.Admin(t)
	defer l.Close()
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{name})
	req.Attribute("cn", []string{name})
	req.Attribute("sn", []string{name})
	req.Attribute("userPassword", []string{password})
	if policy != "" {
		req.Attribute("pwdPolicySubentry", []string{policy})
	}
	if err := l.Add(req); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
	t.Cleanup(func() { s.delete(t, dn) })
	return dn
}

func (s Slapd) delete(t testing.TB, dn string) {
	l := s.Admin(t)
	defer l.Close()
	if err := l.Del(ldap.NewDelRequest(dn, nil)); err != nil {
		t.Errorf("delete %s: %v", dn, err)
	}
}

// PolicyDN is the DN of one of the ppolicy entries: "default" or "minage".
func (s Slapd) PolicyDN(name string) string { return "cn=" + name + ",ou=policies," + s.BaseDN }

// Admin binds to the DC as Administrator over LDAPS: fixture set-up only.
func (s Samba) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	return adminBind(t, s.Host+":"+s.LDAPSPort, s.Host, s.CAFile, s.AdminDN, s.AdminPassword)
}

// User is an Active Directory fixture account.
type User struct {
	DN, SAMAccountName string
}

// AddUser adds an enabled user under container (an OU or CN=Users) with
// password; the test's cleanup deletes it.
func (s Samba) AddUser(t testing.TB, container, password string) User {
	t.Helper()
	sam := Name("svc")
	return s.AddUserNamed(t, container, sam, sam, password)
}

// AddUserNamed is AddUser with the user's cn (its RDN value) and
// sAMAccountName (at most 20 characters).
func (s Samba) AddUserNamed(t testing.TB, container, cn, sam, password string) User {
	t.Helper()
	u := User{DN: "CN=" + cn + "," + container, SAMAccountName: sam}
	l := s.Admin(t)
	defer l.Close()
	req := ldap.NewAddRequest(u.DN, nil)
	req.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	req.Attribute("cn", []string{cn})
	req.Attribute("sAMAccountName", []string{sam})
	req.Attribute("userPrincipalName", []string{sam + "@" + s.Realm})
	req.Attribute("unicodePwd", []string{quotedUTF16(password)})
	req.Attribute("userAccountControl", []string{"512"}) // a normal, enabled account
	if err := l.Add(req); err != nil {
		t.Fatalf("add %s: %v", u.DN, err)
	}
	t.Cleanup(func() {
		l := s.Admin(t)
		defer l.Close()
		if err := l.Del(ldap.NewDelRequest(u.DN, nil)); err != nil {
			t.Errorf("delete %s: %v", u.DN, err)
		}
	})
	return u
}

// AddToGroup makes member a member of group.
func (s Samba) AddToGroup(t testing.TB, group, member string) {
	t.Helper()
	l := s.Admin(t)
	defer l.Close()
	req := ldap.NewModifyRequest(group, nil)
	req.Add("member", []string{member})
	if err := l.Modify(req); err != nil {
		t.Fatalf("add %s to %s: %v", member, group, err)
	}
}

// Disable sets userAccountControl to a disabled normal account.
func (s Samba) Disable(t testing.TB, dn string) {
	t.Helper()
	l := s.Admin(t)
	defer l.Close()
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("userAccountControl", []string{"514"})
	if err := l.Modify(req); err != nil {
		t.Fatalf("disable %s: %v", dn, err)
	}
}

func adminBind(t testing.TB, addr, host, ca, dn, password string) *ldap.Conn {
	t.Helper()
	l, err := ldap.DialURL("ldaps://"+addr, ldap.DialWithTLSConfig(tlsConfig(t, host, ca)))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	if err := l.Bind(dn, password); err != nil {
		l.Close()
		t.Fatalf("bind as %s: %v", dn, err)
	}
	return l
}

// quotedUTF16 is AD's unicodePwd encoding, written here again on purpose:
// fixtures must not depend on the code under test.
func quotedUTF16(p string) string {
	u := utf16.Encode([]rune(`"` + p + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return string(b)
}

// SetPassword sets dn's password as the directory's administrator (the
// rootdn, whom no password policy binds): to put an account in a state no
// rotation leaves.
func (s Slapd) SetPassword(t testing.TB, dn, password string) {
	t.Helper()
	l := s.Admin(t)
	defer l.Close()
	if _, err := l.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", password)); err != nil {
		t.Fatalf("set the password of %s: %v", dn, err)
	}
}

// SetPassword sets dn's password as Administrator.
func (s Samba) SetPassword(t testing.TB, dn, password string) {
	t.Helper()
	l := s.Admin(t)
	defer l.Close()
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("unicodePwd", []string{quotedUTF16(password)})
	if err := l.Modify(req); err != nil {
		t.Fatalf("set the password of %s: %v", dn, err)
	}
}
