package jwtkeys_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestEndToEndUnderRIE builds functions/jwtkeys, runs it under the Lambda
// Runtime Interface Emulator and rotates a secret twice through the local
// runner; tokens signed with both keys then verify through the accessor.
// The function's whole output is scanned for private key material.
func TestEndToEndUnderRIE(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bootstrap := testbed.BuildFunction(t, "jwtkeys")
	out := &testbed.LogBuffer{}
	rie, err := localrun.StartRIE(ctx, localrun.RIEOptions{
		Binary:    testbed.RIEBinary(t),
		Bootstrap: bootstrap,
		Env:       []string{"JWT_ALG=EdDSA", "AWS_LAMBDA_FUNCTION_NAME=jwtkeys-e2e"},
		Output:    out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()

	arn := testbed.CreateSecret(t, e.em, "{}")
	var toks, ds []string
	for i := range 2 {
		start := time.Now()
		res, err := e.em.Rotate(ctx, arn, rie, localrun.Options{Attempts: 1})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		t.Logf("rotation %d under RIE: %v", i+1, time.Since(start).Round(time.Millisecond))
		if !slices.Contains(res.StagesAfter[res.Token], "AWSCURRENT") {
			t.Fatalf("stages after rotation %d: %v", i+1, res.StagesAfter)
		}
		var v struct {
			JWK struct{ D string } `json:"jwk"`
		}
		if err := json.Unmarshal([]byte(testbed.ValueAt(t, e.em, arn, "AWSCURRENT")), &v); err != nil || v.JWK.D == "" {
			t.Fatalf("current version: %v", err)
		}
		ds = append(ds, v.JWK.D)
		tok, err := e.accessor(arn).Sign(ctx, []byte(`{"sub":"e2e"}`))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	acc := e.accessor(arn)
	for i, tok := range toks {
		if _, err := acc.Verify(ctx, tok); err != nil {
			t.Fatalf("token of key %d: %v", i+1, err)
		}
	}
	logs := out.String()
	if !strings.Contains(logs, `"target":"jwtkeys"`) || !strings.Contains(logs, "signing key generated") {
		t.Fatalf("the function's log lines are missing:\n%s", logs)
	}
	for _, d := range ds {
		if strings.Contains(logs, d) {
			t.Fatal("the function logged a private key")
		}
	}
}
