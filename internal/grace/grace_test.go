package grace

import (
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{"": 7 * day, "90d": 90 * day, "36h": 36 * time.Hour, " 1h ": time.Hour, "3650d": Max} {
		got, err := FromEnv(func(string) string { return in }, "GRACE_PERIOD", 7*day)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"59m", "3651d", "-1d", "d", "soon", "1.5d"} {
		if _, err := FromEnv(func(string) string { return in }, "GRACE_PERIOD", day); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if Format(90*day) != "90d" || Format(36*time.Hour) != "36h0m0s" {
		t.Error("Format")
	}
}

func TestKeep(t *testing.T) {
	r := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !Keep(r, r.Add(time.Hour-1), time.Hour) || Keep(r, r.Add(time.Hour), time.Hour) {
		t.Error("Keep is not [retired, retired+period)")
	}
}
