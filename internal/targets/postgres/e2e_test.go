package postgres_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEndToEndUnderRIE builds functions/postgres, runs it under the Lambda
// Runtime Interface Emulator and rotates a secret twice through it.
func TestEndToEndUnderRIE(t *testing.T) {
	em := testbed.Emulator(t)
	bootstrap := testbed.BuildFunction(t, "postgres")
	var out syncBuffer
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary: testbed.RIEBinary(t), Bootstrap: bootstrap, Output: &out,
		Env: []string{"DB_CA_BUNDLE=" + dbtest.Settings(t)["PG_CA_FILE"], "LOG_LEVEL=debug"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()

	user, pw := dbtest.PGUser(t, "e2e", "")
	// No ca_bundle in the secret: the function's DB_CA_BUNDLE is trusted.
	arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"ca_bundle": nil})))
	seen := []string{pw}
	for i := 0; i < 2; i++ {
		res, err := em.Rotate(context.Background(), arn, rie, localrun.Options{})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		t.Logf("rotation %d under RIE: %v", i+1, res.Duration)
		h := dbtest.Harness{T: t, Em: em}
		cur := h.Current(arn)
		mustLogIn(t, "AWSCURRENT after rotation", cur)
		seen = append(seen, cur.Password)
	}
	logs := out.String()
	for _, s := range seen {
		if strings.Contains(logs, s) {
			t.Fatal("a password appears in the function's output")
		}
	}
	if !strings.Contains(logs, `"step":"setSecret"`) {
		t.Fatalf("no setSecret log line in the function output:\n%s", logs)
	}
}
