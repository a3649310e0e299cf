package dirtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The servers' own records of authentication are what "no refused login on
// the server side" is measured against: slapd's stats log (BIND and RESULT
// lines) and Samba's JSON authentication audit log. A Mark remembers where
// a log ended; its counts cover what the server logged after it, up to a
// marker written when the count is asked for, so nothing still in flight is
// missed.

// SlapdMark is a position in slapd's log.
type SlapdMark struct {
	s      Slapd
	offset int64
}

// MarkSlapdLog remembers where slapd's log ends now.
func MarkSlapdLog(t testing.TB, s Slapd) *SlapdMark {
	t.Helper()
	return &SlapdMark{s: s, offset: size(t, s.Log)}
}

var (
	slapdBindRE   = regexp.MustCompile(`conn=(\d+) op=(\d+) BIND dn="([^"]*)" method=`)
	slapdResultRE = regexp.MustCompile(`conn=(\d+) op=(\d+) RESULT tag=97 err=(\d+)`)
	// slapd logs the security strength of the connection a bind came on:
	// ssf=0 is no TLS.
	slapdBindSSFRE = regexp.MustCompile(`conn=\d+ op=\d+ BIND dn="([^"]*)" mech=\S+ bind_ssf=\d+ ssf=(\d+)`)
)

// SlapdBinds is what slapd logged about binds after a mark.
type SlapdBinds struct {
	Binds  int            // bind requests (the rootdn's excluded)
	ByDN   map[string]int // bind requests by lower-case DN
	Failed map[string]int // refused binds (result 49) by lower-case DN
	// Plaintext are the accepted binds that came on a connection without
	// TLS (ssf=0), by lower-case DN.
	Plaintext map[string]int
}

// Read waits until slapd has logged everything it answered before now and
// returns the binds after the mark.
func (m *SlapdMark) Read(t testing.TB) SlapdBinds {
	t.Helper()
	marker := Name("log-marker-")
	// An anonymous search with a unique filter: slapd logs it after every
	// operation answered before it was sent.
	l, err := ldap.DialURL("ldap://" + m.s.Host + ":" + m.s.Port)
	if err != nil {
		t.Fatalf("slapd log marker: %v", err)
	}
	l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(cn="+marker+")", []string{"1.1"}, nil))
	l.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := readFrom(t, m.s.Log, m.offset)
		if i := strings.Index(text, marker); i >= 0 {
			// slapd logs a RESULT after sending it: the result of a bind
			// sent before the marker may follow the marker in the log.
			b, pending := parseSlapd(text, i, strings.ToLower(m.s.AdminDN))
			if pending == 0 {
				return b
			}
			if time.Now().After(deadline) {
				t.Fatalf("slapd's log %s never showed the result of %d binds", m.s.Log, pending)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("slapd's log %s never showed the marker %s", m.s.Log, marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FailedBinds is Read's refused binds.
func (m *SlapdMark) FailedBinds(t testing.TB) map[string]int { t.Helper(); return m.Read(t).Failed }

// Binds is Read's number of bind requests.
func (m *SlapdMark) Binds(t testing.TB) int { t.Helper(); return m.Read(t).Binds }

// parseSlapd counts the binds logged before offset end and their results
// (logged anywhere in text); pending is the number of those binds whose
// result is not logged yet.
func parseSlapd(text string, end int, admin string) (SlapdBinds, int) {
	b := SlapdBinds{ByDN: map[string]int{}, Failed: map[string]int{}, Plaintext: map[string]int{}}
	dns := map[string]string{}
	pos := 0
	for _, line := range strings.Split(text, "\n") {
		before := pos < end
		pos += len(line) + 1
		if m := slapdBindSSFRE.FindStringSubmatch(line); m != nil {
			if before && m[2] == "0" {
				b.Plaintext[strings.ToLower(m[1])]++
			}
			continue
		}
		if m := slapdBindRE.FindStringSubmatch(line); m != nil {
			if !before {
				continue
			}
			dn := strings.ToLower(m[3])
			if dn != admin {
				b.Binds++
			}
			b.ByDN[dn]++
			dns[m[1]+"/"+m[2]] = dn
			continue
		}
		if m := slapdResultRE.FindStringSubmatch(line); m != nil {
			key := m[1] + "/" + m[2]
			dn, ok := dns[key]
			if !ok {
				continue
			}
			delete(dns, key)
			if m[3] == "49" {
				b.Failed[dn]++
			}
		}
	}
	return b, len(dns)
}

// SambaMark is a position in Samba's authentication audit log.
type SambaMark struct {
	s      Samba
	offset int64
}

// MarkSambaLog remembers where Samba's authentication log ends now.
func MarkSambaLog(t testing.TB, s Samba) *SambaMark {
	t.Helper()
	return &SambaMark{s: s, offset: size(t, s.AuthLog)}
}

// SambaAuth is one authentication the DC logged.
type SambaAuth struct {
	Service string // "LDAP", "Kerberos KDC" ...
	Method  string // "simple bind", "ENC-TS Pre-authentication" ...
	Account string // as the client named it
	Status  string // "NT_STATUS_OK", "NT_STATUS_WRONG_PASSWORD" ...
}

// Read waits until the DC has logged every authentication answered before
// now and returns those after the mark.
func (m *SambaMark) Read(t testing.TB) []SambaAuth {
	t.Helper()
	// A bind as a unique account that does not exist: its refusal is the
	// marker, left out of the result.
	marker := Name("log-marker-")
	l, err := ldap.DialURL("ldaps://"+m.s.Host+":"+m.s.LDAPSPort, ldap.DialWithTLSConfig(tlsConfig(t, m.s.Host, m.s.CAFile)))
	if err != nil {
		t.Fatalf("Samba log marker: %v", err)
	}
	l.Bind(marker+"@"+m.s.Realm, "not-a-password")
	l.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		text := readFrom(t, m.s.AuthLog, m.offset)
		if i := strings.Index(text, marker); i >= 0 {
			return parseSamba(t, text[:i])
		}
		if time.Now().After(deadline) {
			t.Fatalf("Samba's log %s never showed the marker %s", m.s.AuthLog, marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Failed is Read's refused authentications (any status but NT_STATUS_OK).
func (m *SambaMark) Failed(t testing.TB) []SambaAuth {
	t.Helper()
	var out []SambaAuth
	for _, a := range m.Read(t) {
		if a.Status != "NT_STATUS_OK" {
			out = append(out, a)
		}
	}
	return out
}

func parseSamba(t testing.TB, text string) []SambaAuth {
	var out []SambaAuth
	for _, line := range strings.Split(text, "\n") {
		i := strings.Index(line, "{")
		if i < 0 {
			continue
		}
		var ev struct {
			Type           string `json:"type"`
			Authentication struct {
				Status             string `json:"status"`
				ServiceDescription string `json:"serviceDescription"`
				AuthDescription    string `json:"authDescription"`
				ClientAccount      string `json:"clientAccount"`
			} `json:"Authentication"`
		}
		if json.Unmarshal([]byte(line[i:]), &ev) != nil || ev.Type != "Authentication" {
			continue
		}
		a := ev.Authentication
		out = append(out, SambaAuth{Service: a.ServiceDescription, Method: a.AuthDescription, Account: a.ClientAccount, Status: a.Status})
	}
	return out
}

func size(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("server log: %v", err)
	}
	return fi.Size()
}

func readFrom(t testing.TB, path string, offset int64) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("server log: %v", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatalf("server log: %v", err)
	}
	b, err := io.ReadAll(bufio.NewReader(f))
	if err != nil {
		t.Fatalf("server log: %v", err)
	}
	return string(b)
}

// String summarises refused authentications for a failure message.
func (a SambaAuth) String() string {
	return fmt.Sprintf("%s %s %s: %s", a.Service, a.Method, a.Account, a.Status)
}
