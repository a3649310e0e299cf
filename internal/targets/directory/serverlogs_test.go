package directory_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestNoPasswordInServerLogs: the directories' own logs (slapd's stats
// log; Samba's authentication audit and its server log) hold none of the
// passwords a rotation sent, in either strategy. The passwords travel only
// inside TLS, as the protocols require them (RFC 3062's newPasswd,
// unicodePwd): there is no hash or verifier form either directory accepts
// and still checks against its password policy.
func TestNoPasswordInServerLogs(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			files := s.logFiles(t)
			offsets := map[string]int64{}
			for _, f := range files {
				if fi, err := os.Stat(f); err == nil {
					offsets[f] = fi.Size()
				}
			}
			em := testbed.Emulator(t)
			h := dbtest.NewHarness(t, target(s.config(t), testbed.AWSConfig(t)))
			var seen [][]byte
			for _, st := range strategies {
				f := s.newFixture(t, em, st, nil)
				seen = append(seen, []byte(f.password))
				for range 2 {
					if _, err := rotateOnce(t, h, f.arn); err != nil {
						t.Fatalf("%s: %v", st, err)
					}
					_, pw := current(t, em, f.arn, "AWSCURRENT")
					seen = append(seen, []byte(pw))
				}
			}
			var scanned int64
			for _, name := range files {
				f, err := os.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.Seek(offsets[name], io.SeekStart); err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				scanned += int64(len(b))
				for _, pw := range seen {
					if bytes.Contains(b, pw) {
						t.Fatalf("a password appears in %s", name)
					}
				}
			}
			t.Logf("%s: %d passwords, none in %d bytes the server logged during the rotations (%d files)", s.name, len(seen), scanned, len(files))
			if scanned == 0 {
				t.Fatal("the server logged nothing: the scan proves nothing")
			}
		})
	}
}
