// Package dirtest is test equipment for the directory target: the settings
// of the test bed's OpenLDAP and Samba AD servers (scripts/slapd.sh and
// scripts/samba.sh), fixture accounts made with their admin accounts, a
// load of clients binding with stored credentials, and readers of each
// server's own log of refused binds.
package dirtest

import (
	"bufio"
	"crypto/tls"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
)

// repoRoot is the checkout this file is in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// setting returns the environment variable name, or its value in the
// test bed's env file (an "export K=V" per line) when the environment
// has none.
func setting(t testing.TB, envFile, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	path := filepath.Join(repoRoot(), ".testbed", envFile)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%s is not set and %s cannot be read (%v): start the server with scripts/%s up",
			name, path, err, strings.TrimSuffix(envFile, ".env")+".sh")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export "), "=")
		if ok && k == name {
			return v
		}
	}
	t.Fatalf("%s is in neither the environment nor %s", name, path)
	return ""
}

// Slapd is the test bed's OpenLDAP server.
type Slapd struct {
	Host            string
	Port, TLSPort   string
	CAFile          string
	BaseDN          string
	AdminDN         string // the rootdn: fixtures only
	AdminPassword   string
	RotatorDN       string // may reset passwords under ou=services only
	RotatorPassword string
	Log             string
}

// LoadSlapd reads the settings scripts/slapd.sh wrote.
func LoadSlapd(t testing.TB) Slapd {
	t.Helper()
	g := func(n string) string { return setting(t, "slapd.env", n) }
	return Slapd{
		Host: g("SLAPD_HOST"), Port: g("SLAPD_PORT"), TLSPort: g("SLAPD_TLS_PORT"),
		CAFile: g("SLAPD_CA_FILE"), BaseDN: g("SLAPD_BASE_DN"),
		AdminDN: g("SLAPD_ADMIN_DN"), AdminPassword: g("SLAPD_ADMIN_PASSWORD"),
		RotatorDN: g("SLAPD_ROTATOR_DN"), RotatorPassword: g("SLAPD_ROTATOR_PASSWORD"),
		Log: g("SLAPD_LOG"),
	}
}

// ServicesOU is where the rotator may reset passwords.
func (s Slapd) ServicesOU() string { return "ou=services," + s.BaseDN }

// PeopleOU is where it may not.
func (s Slapd) PeopleOU() string { return "ou=people," + s.BaseDN }

// Endpoint is the server over sec, verified with the test CA.
func (s Slapd) Endpoint(t testing.TB, sec directory.Security) directory.Endpoint {
	t.Helper()
	port := s.TLSPort
	if sec != directory.LDAPS {
		port = s.Port
	}
	return directory.Endpoint{
		Kind: directory.LDAP, Host: s.Host, Port: atoi(t, port), Security: sec,
		TLS: tlsConfig(t, s.Host, s.CAFile), Timeout: 5 * time.Second,
	}
}

// Samba is the test bed's Samba Active Directory domain controller.
type Samba struct {
	Host            string
	LDAPPort        string
	LDAPSPort       string
	KDC             string
	Realm           string
	CAFile          string
	BaseDN          string
	AdminDN         string // Administrator: fixtures only
	AdminPassword   string
	RotatorDN       string // holds Reset Password on ServicesOU only
	RotatorPassword string
	ServicesOU      string
	MinAgeGroupDN   string // members get a minimum password age of 1 day
	AuthLog         string
}

// LoadSamba reads the settings scripts/samba.sh wrote.
func LoadSamba(t testing.TB) Samba {
	t.Helper()
	g := func(n string) string { return setting(t, "samba.env", n) }
	return Samba{
		Host: g("SAMBA_HOST"), LDAPPort: g("SAMBA_LDAP_PORT"), LDAPSPort: g("SAMBA_LDAPS_PORT"),
		KDC: g("SAMBA_KDC"), Realm: g("SAMBA_REALM"), CAFile: g("SAMBA_CA_FILE"), BaseDN: g("SAMBA_BASE_DN"),
		AdminDN: g("SAMBA_ADMIN_DN"), AdminPassword: g("SAMBA_ADMIN_PASSWORD"),
		RotatorDN: g("SAMBA_ROTATOR_DN"), RotatorPassword: g("SAMBA_ROTATOR_PASSWORD"),
		ServicesOU: g("SAMBA_SERVICES_OU"), MinAgeGroupDN: g("SAMBA_MINAGE_GROUP_DN"),
		AuthLog: g("SAMBA_AUTH_LOG"),
	}
}

// UsersCN is AD's default container, where the rotator may not reset.
func (s Samba) UsersCN() string { return "CN=Users," + s.BaseDN }

// Endpoint is the DC over LDAPS, verified with the test CA, with its KDC.
func (s Samba) Endpoint(t testing.TB) directory.Endpoint {
	t.Helper()
	return directory.Endpoint{
		Kind: directory.ActiveDirectory, Host: s.Host, Port: atoi(t, s.LDAPSPort), Security: directory.LDAPS,
		TLS: tlsConfig(t, s.Host, s.CAFile), Timeout: 5 * time.Second,
		Kerberos: directory.Kerberos{Realm: s.Realm, KDCs: []string{s.KDC}},
	}
}

func tlsConfig(t testing.TB, host, ca string) *tls.Config {
	t.Helper()
	c, err := dbsecret.TLSConfig(true, host, ca)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("port %q is not a number", s)
	}
	return n
}
