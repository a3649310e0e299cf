package datakey_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestEndToEndUnderRIE builds functions/datakey, runs it under the Lambda
// Runtime Interface Emulator and rotates a secret twice through the local
// runner, as Secrets Manager would; a keyring then reads data written under
// both keys. The function's whole output is scanned for key material.
func TestEndToEndUnderRIE(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyARN := e.symmetricKey()
	bootstrap := testbed.BuildFunction(t, "datakey")
	out := &testbed.LogBuffer{}
	rie, err := localrun.StartRIE(ctx, localrun.RIEOptions{
		Binary:    testbed.RIEBinary(t),
		Bootstrap: bootstrap,
		Env:       []string{"KMS_KEY_ID=" + keyARN, "KMS_ROTATION_PERIOD_DAYS=120", "AWS_LAMBDA_FUNCTION_NAME=datakey-e2e"},
		Output:    out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()

	arn := testbed.CreateSecret(t, e.em, "{}")
	kr := e.keyring(arn, nil)
	var cts [][]byte
	var material [][]byte
	for i := range 2 {
		start := time.Now()
		res, err := e.em.Rotate(ctx, arn, rie, localrun.Options{Attempts: 1})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		t.Logf("rotation %d under RIE: %v (steps %v)", i+1, time.Since(start).Round(time.Millisecond), stepDurations(res))
		if !hasStage(res.StagesAfter, res.Token, "AWSCURRENT") {
			t.Fatalf("stages after rotation %d: %v", i+1, res.StagesAfter)
		}
		d := e.doc(arn, "AWSCURRENT")
		material = append(material, d.Material)
		if err := kr.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		ct, err := kr.Encrypt(ctx, []byte("e2e"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cts = append(cts, ct)
	}
	for i, ct := range cts {
		if pt, err := kr.Decrypt(ctx, ct, nil); err != nil || string(pt) != "e2e" {
			t.Fatalf("data under key %d: %v", i+1, err)
		}
	}
	st, err := e.kms.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyARN)})
	if err != nil || !st.KeyRotationEnabled {
		t.Fatalf("KMS key rotation after the e2e rotations: %+v %v", st, err)
	}
	logs := out.String()
	if !strings.Contains(logs, `"target":"datakey"`) || !strings.Contains(logs, "data key generated") {
		t.Fatalf("the function's log lines are missing:\n%s", logs)
	}
	for _, m := range material {
		if strings.Contains(logs, base64.StdEncoding.EncodeToString(m)) {
			t.Fatal("the function logged key material")
		}
	}
}

func stepDurations(res localrun.Result) []string {
	var out []string
	for _, s := range res.Steps {
		out = append(out, s.Step+"="+s.Duration.Round(time.Millisecond).String())
	}
	return out
}

// TestEndToEndBadConfiguration runs the built function with a rotation
// period KMS would refuse: every step fails with an error naming the
// variable, and the secret is not touched.
func TestEndToEndBadConfiguration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rie, err := localrun.StartRIE(ctx, localrun.RIEOptions{
		Binary:    testbed.RIEBinary(t),
		Bootstrap: testbed.BuildFunction(t, "datakey"),
		Env:       []string{"KMS_KEY_ID=" + e.symmetricKey(), "KMS_ROTATION_PERIOD_DAYS=30"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	arn := testbed.CreateSecret(t, e.em, "{}")
	before := e.stages(arn)
	res, err := e.em.Rotate(ctx, arn, rie, localrun.Options{Attempts: 1})
	if err == nil || !strings.Contains(err.Error(), "KMS_ROTATION_PERIOD_DAYS=30 is outside 90..2560") {
		t.Fatalf("rotation with a bad period: %v", err)
	}
	if _, err := e.em.SM.GetSecretValue(ctx, secretVersion(arn, res.Token)); err == nil {
		t.Fatal("a pending value was stored")
	}
	for id := range before {
		if testbed.ValueOf(t, e.em, arn, id) != "{}" || !hasStage(e.stages(arn), id, "AWSCURRENT") {
			t.Fatal("the current version changed")
		}
	}
}
