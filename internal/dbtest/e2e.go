package dbtest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// RotateUnderRIE is the end-to-end test of a database function: it builds
// functions/<function>, runs it under the Lambda Runtime Interface Emulator
// with DB_CA_BUNDLE=caFile, stores secret and rotates it twice through the
// function. After each rotation AWSCURRENT must log in (login tells); at the
// end no password, old or new, may appear in the function's output, which
// must hold the setSecret log line.
func RotateUnderRIE(t *testing.T, function, caFile string, secret map[string]any, login func(testing.TB, *dbsecret.Secret) error) {
	t.Helper()
	RotateUnderRIEWithEnv(t, function, []string{"DB_CA_BUNDLE=" + caFile}, secret, login)
}

// RotateUnderRIEWithEnv is RotateUnderRIE for a function configured by env
// (the function's variables besides LOG_LEVEL=debug): account functions
// other than the databases'. The secret's fields are those of the AWS
// database format where it has them ("username", "password", "masterarn").
func RotateUnderRIEWithEnv(t *testing.T, function string, env []string, secret map[string]any, login func(testing.TB, *dbsecret.Secret) error) {
	t.Helper()
	em := testbed.Emulator(t)
	bootstrap := testbed.BuildFunction(t, function)
	var out testbed.LogBuffer
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary: testbed.RIEBinary(t), Bootstrap: bootstrap, Output: &out,
		Env: append(slices.Clip(env), "LOG_LEVEL=debug"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()

	arn := testbed.CreateSecret(t, em, SecretJSON(t, secret))
	pw, _ := secret["password"].(string)
	seen := []string{pw}
	for i := 0; i < 2; i++ {
		res, err := em.Rotate(context.Background(), arn, rie, localrun.Options{})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		t.Logf("rotation %d under RIE: %v", i+1, res.Duration)
		h := Harness{T: t, Em: em}
		cur := h.Current(arn)
		if err := login(t, cur); err != nil {
			t.Fatalf("AWSCURRENT after rotation does not log in: %v", err)
		}
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
