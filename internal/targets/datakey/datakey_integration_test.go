package datakey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/datakey"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

func TestRotateFromEmptyBootstrap(t *testing.T) {
	for _, storage := range []string{"plaintext", "wrapped"} {
		t.Run(storage, func(t *testing.T) {
			e := newEnv(t)
			keyARN := e.symmetricKey()
			cfg := e.config(keyARN, map[string]string{"KEY_STORAGE": storage})
			arn := testbed.CreateSecret(t, e.em, "{}")
			r1 := e.rotate(arn, cfg)
			d1 := e.doc(arn, "AWSCURRENT")
			if d1.KID != r1.Token || d1.Alg != keyring.Algorithm || d1.KMSKeyARN != keyARN || len(d1.Previous) != 0 {
				t.Fatalf("first key: kid %s alg %s kms %s previous %d", d1.KID, d1.Alg, d1.KMSKeyARN, len(d1.Previous))
			}
			if (storage == "plaintext") != (len(d1.Material) == keyring.KeySize) {
				t.Fatalf("KEY_STORAGE=%s: stored key of %d bytes", storage, len(d1.Material))
			}
			if d1.EncryptionContext[datakey.ContextSecretARN] != arn || d1.EncryptionContext[datakey.ContextVersionID] != r1.Token {
				t.Fatalf("encryption context %v does not bind the secret version", d1.EncryptionContext)
			}
			if time.Since(d1.Created) > time.Minute {
				t.Fatalf("created %v", d1.Created)
			}
			// The data key unwraps only with its encryption context.
			_, err := e.kms.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: d1.WrappedKey, KeyId: aws.String(keyARN)})
			if err == nil {
				t.Error("the wrapped key decrypts without its encryption context")
			}
			r2 := e.rotate(arn, cfg)
			d2 := e.doc(arn, "AWSCURRENT")
			if d2.KID != r2.Token || len(d2.Previous) != 1 || d2.Previous[0].KID != r1.Token || d2.Previous[0].Retired.IsZero() {
				t.Fatalf("second rotation: kid %s previous %v", d2.KID, kids(d2.Previous))
			}
			if storage == "wrapped" && d2.Previous[0].Material != nil {
				t.Fatal("wrapped storage carries a plaintext key")
			}
			if !e.rotationStatus(keyARN) {
				t.Error("KMS key rotation not enabled after a rotation")
			}
		})
	}
}

func TestEachStepTwice(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(e.symmetricKey(), nil)
	arn := testbed.CreateSecret(t, e.em, "{}")
	e.rotate(arn, cfg)
	before := e.doc(arn, "AWSCURRENT")
	token := localrun.NewToken()
	if _, err := e.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	eng := e.engine(cfg, e.em.SM, e.kms)
	var first string
	for _, step := range localrun.Steps {
		for i := range 2 {
			if err := eng.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}); err != nil {
				t.Fatalf("%s run %d: %v", step, i+1, err)
			}
			if step == rotation.StepCreate {
				v := testbed.ValueOf(t, e.em, arn, token)
				if i == 1 && v != first {
					t.Fatal("second createSecret changed the pending value")
				}
				first = v
			}
		}
	}
	st := e.stages(arn)
	if !hasStage(st, token, "AWSCURRENT") || !hasStage(st, before.KID, "AWSPREVIOUS") {
		t.Fatalf("stages %v", st)
	}
	after := e.doc(arn, "AWSCURRENT")
	if after.KID != token || len(after.Previous) != 1 || after.Previous[0].KID != before.KID {
		t.Fatalf("after: kid %s previous %v", after.KID, kids(after.Previous))
	}
}

// TestKeyringAcrossRotations is the grace-period contract: data written
// under keys 1, 2 and 3 decrypts after two rotations, with the keys carried
// by the versions; a key that aged out gives an error naming its kid.
func TestKeyringAcrossRotations(t *testing.T) {
	for _, storage := range []string{"plaintext", "wrapped"} {
		t.Run(storage, func(t *testing.T) {
			e := newEnv(t)
			clk := &clock{t: time.Now().UTC()}
			cfg := e.config(e.symmetricKey(), map[string]string{"GRACE_PERIOD": "30d", "KEY_STORAGE": storage})
			cfg.Now = clk.Now
			arn := testbed.CreateSecret(t, e.em, "{}")
			ctx := context.Background()

			kr := e.keyring(arn, clk.Now)
			if _, err := kr.Encrypt(ctx, []byte("x"), nil); !errors.Is(err, keyring.ErrNoKey) {
				t.Fatalf("encrypt with the bootstrap secret: %v, want ErrNoKey", err)
			}
			var cts [][]byte
			var keyIDs []string
			for i := 1; i <= 3; i++ {
				if i > 1 {
					clk.Advance(24 * time.Hour)
				}
				keyIDs = append(keyIDs, e.rotate(arn, cfg).Token)
				// The keyring learns of the rotation when its TTL ends.
				if err := kr.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				ct, err := kr.Encrypt(ctx, fmt.Appendf(nil, "record %d", i), []byte("row-1"))
				if err != nil {
					t.Fatal(err)
				}
				if kid, _ := keyring.KIDOf(ct); kid != keyIDs[i-1] {
					t.Fatalf("data %d encrypted under %s, want the current key %s", i, kid, keyIDs[i-1])
				}
				cts = append(cts, ct)
			}
			// Only AWSCURRENT (key 3) and AWSPREVIOUS (key 2) are labelled;
			// key 1 lives on in their previous lists.
			st := e.stages(arn)
			if len(st[keyIDs[0]]) != 0 && hasStage(st, keyIDs[0], "AWSPREVIOUS") {
				t.Fatalf("stages %v", st)
			}
			fresh := e.keyring(arn, clk.Now)
			for i, ct := range cts {
				for _, k := range []*keyring.Keyring{kr, fresh} {
					pt, err := k.Decrypt(ctx, ct, []byte("row-1"))
					if err != nil || string(pt) != fmt.Sprintf("record %d", i+1) {
						t.Fatalf("decrypt data under key %d: %q, %v", i+1, pt, err)
					}
				}
			}
			if _, err := fresh.Decrypt(ctx, cts[0], []byte("row-2")); err == nil {
				t.Fatal("decrypted with the wrong associated data")
			}

			// 40 days on, key 1 (retired 38 days ago) and key 2 (37) are past
			// the 30-day grace: the next version does not carry them. Key 3
			// is AWSCURRENT's key and is carried, to become AWSPREVIOUS.
			clk.Advance(40 * 24 * time.Hour)
			e.rotate(arn, cfg)
			d := e.doc(arn, "AWSCURRENT")
			if got := kids(d.Previous); len(got) != 1 || got[0] != keyIDs[2] {
				t.Fatalf("after aging: previous %v, want [%s]", got, keyIDs[2])
			}
			// Nor does the keyring take them from AWSPREVIOUS (key 3's
			// version), which still carries them.
			aged := e.keyring(arn, clk.Now)
			for i, ct := range cts[:2] {
				_, err := aged.Decrypt(ctx, ct, []byte("row-1"))
				var ke *keyring.KeyError
				if !errors.As(err, &ke) || ke.KID != keyIDs[i] || !errors.Is(err, keyring.ErrUnknownKey) || !strings.Contains(err.Error(), keyIDs[i]) {
					t.Fatalf("data under aged-out key %d: error %v, want a KeyError naming %s", i+1, err, keyIDs[i])
				}
			}
			if pt, err := aged.Decrypt(ctx, cts[2], []byte("row-1")); err != nil || string(pt) != "record 3" {
				t.Fatalf("data under key 3 (AWSPREVIOUS): %q, %v", pt, err)
			}
			// The stale keyring learns of the new keys on the unknown kid.
			newCT, err := aged.Encrypt(ctx, []byte("new"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := kr.Decrypt(ctx, newCT, nil); err != nil || string(pt) != "new" {
				t.Fatalf("stale keyring on a new kid: %q, %v", pt, err)
			}
		})
	}
}

func TestKMSKeyRotationIsEnsured(t *testing.T) {
	e := newEnv(t)
	keyARN := e.symmetricKey()
	if e.rotationStatus(keyARN) {
		t.Fatal("a new key already rotates")
	}
	cfg := e.config(keyARN, map[string]string{"KMS_ROTATION_PERIOD_DAYS": "180"})
	arn := testbed.CreateSecret(t, e.em, "{}")
	e.rotate(arn, cfg)
	if !e.rotationStatus(keyARN) {
		t.Fatal("KMS key rotation not enabled")
	}
	logs := e.logs.String()
	for _, want := range []string{`"found_rotation_enabled":false`, `"wanted_rotation_period_days":180`, `"changed":true`, `"kms_key_arn":"` + keyARN} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	e.logs = &testbed.LogBuffer{}
	e.rotate(arn, cfg)
	if !strings.Contains(e.logs.String(), `"found_rotation_enabled":true`) {
		t.Error("second rotation did not log the rotation it found")
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good := e.symmetricKey()
	disabled := e.symmetricKey()
	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(disabled[strings.LastIndex(disabled, "/")+1:])}); err != nil {
		t.Fatal(err)
	}
	asym := e.newKMSKey(kmstypes.KeySpecRsa2048, kmstypes.KeyUsageTypeEncryptDecrypt)
	missing := "arn:aws:kms:us-east-1:123456789012:key/" + localrun.NewToken()
	cases := []struct {
		name, key, value, want string
	}{
		{"missing key", missing, "{}", "does not exist"},
		{"disabled key", disabled, "{}", "Disabled"},
		{"asymmetric key", asym, "{}", "symmetric"},
		{"not a data-key document", good, `{"username":"u","password":"p4ss"}`, "not a data-key document"},
		{"not JSON", good, "plain text", "not a data-key document"},
		{"wrong algorithm", good, `{"kid":"k","alg":"DES","kms_key_arn":"a","wrapped_key":"AA=="}`, "DES"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arn := testbed.CreateSecret(t, e.em, c.value)
			token := localrun.NewToken()
			if _, err := e.em.OpenRotation(ctx, arn, token); err != nil {
				t.Fatal(err)
			}
			before := fmt.Sprint(e.stages(arn))
			eng := e.engine(e.config(c.key, nil), e.em.SM, e.kms)
			err := eng.Handle(ctx, events.SecretsManagerSecretRotationEvent{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
			if strings.Contains(err.Error(), "p4ss") {
				t.Fatal("error quotes the secret value")
			}
			if after := fmt.Sprint(e.stages(arn)); after != before {
				t.Fatalf("stages changed: %s -> %s", before, after)
			}
			if _, err := e.em.SM.GetSecretValue(ctx, secretVersion(arn, token)); err == nil {
				t.Fatal("a pending value was stored")
			}
			if testbed.ValueAt(t, e.em, arn, "AWSCURRENT") != c.value {
				t.Fatal("current value changed")
			}
		})
	}
	if e.rotationStatus(good) {
		t.Error("rejected rotations changed the KMS key's rotation")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"no key":          {map[string]string{}, "KMS_KEY_ID is not set"},
		"period too low":  {map[string]string{"KMS_KEY_ID": "k", "KMS_ROTATION_PERIOD_DAYS": "89"}, "KMS_ROTATION_PERIOD_DAYS=89 is outside 90..2560"},
		"period too high": {map[string]string{"KMS_KEY_ID": "k", "KMS_ROTATION_PERIOD_DAYS": "2561"}, "outside 90..2560"},
		"period not int":  {map[string]string{"KMS_KEY_ID": "k", "KMS_ROTATION_PERIOD_DAYS": "1y"}, "not an integer"},
		"storage":         {map[string]string{"KMS_KEY_ID": "k", "KEY_STORAGE": "clear"}, "KEY_STORAGE"},
		"grace":           {map[string]string{"KMS_KEY_ID": "k", "GRACE_PERIOD": "5m"}, "GRACE_PERIOD"},
		"grace junk":      {map[string]string{"KMS_KEY_ID": "k", "GRACE_PERIOD": "soon"}, "GRACE_PERIOD"},
	}
	for name, c := range cases {
		_, err := datakey.ConfigFromEnv(func(k string) string { return c.env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	cfg, err := datakey.ConfigFromEnv(func(k string) string { return map[string]string{"KMS_KEY_ID": "alias/x"}[k] })
	if err != nil || cfg.RotationDays != 365 || cfg.Storage != datakey.StoragePlaintext || cfg.Grace != 365*24*time.Hour {
		t.Fatalf("defaults %+v, %v", cfg, err)
	}
	for _, days := range []string{"90", "2560"} {
		if _, err := datakey.ConfigFromEnv(func(k string) string {
			return map[string]string{"KMS_KEY_ID": "k", "KMS_ROTATION_PERIOD_DAYS": days}[k]
		}); err != nil {
			t.Errorf("%s days: %v", days, err)
		}
	}
}

// TestCrashAtEveryCall kills each step after each of its AWS calls (Secrets
// Manager and KMS), reruns it in a fresh engine and finishes the rotation:
// the end state is that of an uninterrupted rotation, and data encrypted
// under the old key stays readable throughout.
func TestCrashAtEveryCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyARN := e.symmetricKey()
	cfg := e.config(keyARN, nil)
	for si, step := range localrun.Steps {
		for k := 0; ; k++ {
			arn := testbed.CreateSecret(t, e.em, "{}")
			e.rotate(arn, cfg)
			old := e.doc(arn, "AWSCURRENT")
			kr := e.keyring(arn, nil)
			ct, err := kr.Encrypt(ctx, []byte("old data"), nil)
			if err != nil {
				t.Fatal(err)
			}
			token := localrun.NewToken()
			if _, err := e.em.OpenRotation(ctx, arn, token); err != nil {
				t.Fatal(err)
			}
			eng := e.engine(cfg, e.em.SM, e.kms)
			ev := func(s string) events.SecretsManagerSecretRotationEvent {
				return events.SecretsManagerSecretRotationEvent{Step: s, SecretID: arn, ClientRequestToken: token}
			}
			for _, prior := range localrun.Steps[:si] {
				if err := eng.Handle(ctx, ev(prior)); err != nil {
					t.Fatalf("%s: %v", prior, err)
				}
			}
			// Secrets Manager and KMS calls count together.
			crashing := (&testbed.Crasher{K: k}).Config(e.cfg)
			sm, kc := secretsmanager.NewFromConfig(crashing), kms.NewFromConfig(crashing)
			err = e.engine(cfg, sm, kc).Handle(ctx, ev(step))
			if err == nil {
				if k == 0 {
					t.Fatalf("%s made no AWS call", step)
				}
				break
			}
			if !errors.Is(err, testbed.ErrCrash) {
				t.Fatalf("%s crashed after %d calls: unexpected error %v", step, k, err)
			}
			if pt, err := e.keyring(arn, nil).Decrypt(ctx, ct, nil); err != nil || string(pt) != "old data" {
				t.Fatalf("%s crashed after %d calls: old data unreadable: %v", step, k, err)
			}
			fresh := e.engine(cfg, e.em.SM, e.kms)
			for _, rest := range localrun.Steps[si:] {
				if err := fresh.Handle(ctx, ev(rest)); err != nil {
					t.Fatalf("%s crashed after %d calls; rerun of %s: %v", step, k, rest, err)
				}
			}
			if err := e.em.CloseRotation(ctx, arn, token); err != nil {
				t.Fatal(err)
			}
			st := e.stages(arn)
			if !hasStage(st, token, "AWSCURRENT") || !hasStage(st, old.KID, "AWSPREVIOUS") {
				t.Fatalf("%s crashed after %d calls: stages %v", step, k, st)
			}
			now := e.doc(arn, "AWSCURRENT")
			if now.KID != token || len(now.Previous) != 1 || now.Previous[0].KID != old.KID || !bytes.Equal(now.Previous[0].Material, old.Material) {
				t.Fatalf("%s crashed after %d calls: current kid %s previous %v", step, k, now.KID, kids(now.Previous))
			}
			after := e.keyring(arn, nil)
			if pt, err := after.Decrypt(ctx, ct, nil); err != nil || string(pt) != "old data" {
				t.Fatalf("%s crashed after %d calls: old data after rotation: %v", step, k, err)
			}
			if _, err := after.Encrypt(ctx, []byte("new"), nil); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: crash after %d calls recovered", step, k)
		}
	}
}

// TestLogsCarryNoKeyMaterial scans every log line of full rotations, in
// both storage modes, for any encoding of any key.
func TestLogsCarryNoKeyMaterial(t *testing.T) {
	e := newEnv(t)
	var secrets [][]byte
	for _, storage := range []string{"plaintext", "wrapped"} {
		cfg := e.config(e.symmetricKey(), map[string]string{"KEY_STORAGE": storage})
		arn := testbed.CreateSecret(t, e.em, "{}")
		for range 3 {
			e.rotate(arn, cfg)
			d := e.doc(arn, "AWSCURRENT")
			out, err := e.kms.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: d.WrappedKey, EncryptionContext: d.EncryptionContext})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, out.Plaintext, d.WrappedKey)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "data key generated") || !strings.Contains(logs, "pending data key works") {
		t.Fatal("the logs lack the target's lines: the scan would prove nothing")
	}
	for _, s := range secrets {
		for _, enc := range []string{base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s[:16])} {
			if strings.Contains(logs, enc) {
				t.Fatalf("log output contains key material")
			}
		}
	}
	if strings.Contains(logs, `"key":`) || strings.Contains(logs, "wrapped_key") {
		t.Fatal("log output contains a key field")
	}
}
