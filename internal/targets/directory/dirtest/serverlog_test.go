package dirtest

import (
	"strings"
	"testing"
)

// Lines as slapd 2.5 logged them: the refused bind's RESULT comes after
// the marker search that was sent once the client had the refusal.
const slapdSample = `6b092996.337f12a6 0x7fd9a4ff86c0 conn=1059 op=0 BIND dn="uid=svc-a,ou=services,dc=rotation,dc=test" method=128
6b092996.343fb2af 0x7fd987fff6c0 conn=1060 op=0 SRCH base="" scope=0 deref=0 filter="(cn=log-marker-2cb71579c3)"
6b092996.34488745 0x7fd987fff6c0 conn=1060 op=0 SEARCH RESULT tag=101 err=0 qtime=0.000008 etime=0.000609 nentries=0 text=
6b092996.34ac8f85 0x7fd9a4ff86c0 conn=1059 op=0 RESULT tag=97 err=49 qtime=0.000010 etime=0.019795 text=
6b0929a0.351e1846 0x7fd9a7ffe6c0 conn=1061 op=0 BIND dn="uid=svc-b,ou=services,dc=rotation,dc=test" method=128
6b0929a0.351e1847 0x7fd9a7ffe6c0 conn=1062 op=0 BIND dn="uid=svc-c,ou=services,dc=rotation,dc=test" method=128
6b0929a0.351e1848 0x7fd9a7ffe6c0 conn=1062 op=0 BIND dn="uid=svc-c,ou=services,dc=rotation,dc=test" mech=SIMPLE bind_ssf=0 ssf=0
6b0929a0.351e1849 0x7fd9a7ffe6c0 conn=1062 op=0 RESULT tag=97 err=0 qtime=0.000045 etime=0.000514 text=
6b0929a0.3524e4d4 0x7fd9a7ffe6c0 conn=1061 op=0 RESULT tag=97 err=49 qtime=0.000045 etime=0.000514 text=
`

func TestParseSlapdCountsResultsLoggedAfterTheMarker(t *testing.T) {
	end := strings.Index(slapdSample, "log-marker-")
	// Every line after the marker is ignored, plaintext binds included.
	if b, _ := parseSlapd(slapdSample, len(slapdSample), ""); b.Plaintext["uid=svc-c,ou=services,dc=rotation,dc=test"] != 1 || b.ByDN["uid=svc-c,ou=services,dc=rotation,dc=test"] != 1 {
		t.Fatalf("parseSlapd = %+v: want svc-c's one bind, without TLS", b)
	}
	b, pending := parseSlapd(slapdSample, end, "cn=admin,dc=rotation,dc=test")
	if pending != 0 || b.Binds != 1 || len(b.Failed) != 1 || b.Failed["uid=svc-a,ou=services,dc=rotation,dc=test"] != 1 {
		t.Fatalf("parseSlapd = %+v, pending %d; want svc-a's one refused bind and nothing after the marker", b, pending)
	}
	// Before its RESULT is logged, the bind is pending.
	cut := strings.Index(slapdSample, "conn=1059 op=0 RESULT")
	if _, pending := parseSlapd(slapdSample[:cut], end, ""); pending != 1 {
		t.Fatalf("pending = %d, want 1", pending)
	}
}
