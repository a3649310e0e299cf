package jwtkeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/jwtkeys"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/jwks"
)

type env struct {
	t    *testing.T
	em   *localrun.Emulator
	cfg  aws.Config
	logs *testbed.LogBuffer
}

func newEnv(t *testing.T) *env {
	cfg := testbed.AWSConfig(t)
	return &env{t: t, em: localrun.NewEmulator(cfg), cfg: cfg, logs: &testbed.LogBuffer{}}
}

func config(t *testing.T, m map[string]string) jwtkeys.Config {
	t.Helper()
	cfg, err := jwtkeys.ConfigFromEnv(func(k string) string { return m[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (e *env) engine(cfg jwtkeys.Config, sm *secretsmanager.Client) *rotation.Engine {
	return rotation.New(sm, jwtkeys.New(cfg), rotation.Options{TargetType: "jwtkeys", Function: "test",
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
}

func (e *env) rotate(arn string, cfg jwtkeys.Config) string {
	e.t.Helper()
	eng := e.engine(cfg, e.em.SM)
	res, err := e.em.Rotate(context.Background(), arn, localrun.InvokerFunc(eng.Handle), localrun.Options{Attempts: 1})
	if err != nil {
		e.t.Fatalf("rotate: %v", err)
	}
	return res.Token
}

func (e *env) doc(arn, stage string) jwks.Document {
	e.t.Helper()
	d, err := jwks.ParseDocument(testbed.ValueAt(e.t, e.em, arn, stage))
	if err != nil {
		e.t.Fatalf("%s: %v", stage, err)
	}
	return d
}

func (e *env) accessor(arn string) *jwks.Accessor {
	e.t.Helper()
	a, err := jwks.New(jwks.Options{SecretID: arn, Secrets: e.em.SM, MinRefresh: time.Nanosecond})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *env) stages(arn string) map[string][]string {
	e.t.Helper()
	s, err := e.em.Stages(context.Background(), arn)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func kidsOf(d jwks.Document) []string {
	var out []string
	for _, k := range d.JWKS.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestRotateEachAlgorithm(t *testing.T) {
	for _, c := range []map[string]string{
		{}, {"JWT_ALG": "RS256"}, {"JWT_ALG": "RS256", "RSA_KEY_BITS": "3072"}, {"JWT_ALG": "EdDSA"},
	} {
		cfg := config(t, c)
		t.Run(fmt.Sprint(cfg.Alg, cfg.RSABits), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			arn := testbed.CreateSecret(t, e.em, "{}")
			acc := e.accessor(arn)
			if _, err := acc.Sign(ctx, []byte("x")); !errors.Is(err, jwks.ErrNoKey) {
				t.Fatalf("sign with the bootstrap secret: %v, want ErrNoKey", err)
			}
			k1 := e.rotate(arn, cfg)
			d1 := e.doc(arn, "AWSCURRENT")
			if d1.KID != k1 || d1.Alg != cfg.Alg || d1.PrivateKey.Use != "sig" || !slices.Equal(kidsOf(d1), []string{k1}) {
				t.Fatalf("first key: kid %s alg %s jwks %v", d1.KID, d1.Alg, kidsOf(d1))
			}
			if err := acc.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			tok1, err := acc.Sign(ctx, []byte(`{"n":1}`))
			if err != nil {
				t.Fatal(err)
			}
			k2 := e.rotate(arn, cfg)
			d2 := e.doc(arn, "AWSCURRENT")
			if !slices.Equal(kidsOf(d2), []string{k2, k1}) || d2.Previous[0].KID != k1 {
				t.Fatalf("second rotation: jwks %v", kidsOf(d2))
			}
			// A verifier that has not seen k2 learns it on the unknown kid.
			tok2, err := e.accessor(arn).Sign(ctx, []byte(`{"n":2}`))
			if err != nil {
				t.Fatal(err)
			}
			for i, tok := range []string{tok1, tok2} {
				if p, err := acc.Verify(ctx, tok); err != nil || string(p) != fmt.Sprintf(`{"n":%d}`, i+1) {
					t.Fatalf("token %d: %q %v", i+1, p, err)
				}
			}
		})
	}
}

func TestPendingKeyVerifiesDuringRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := config(t, nil)
	arn := testbed.CreateSecret(t, e.em, "{}")
	k1 := e.rotate(arn, cfg)
	token := localrun.NewToken()
	if _, err := e.em.OpenRotation(ctx, arn, token); err != nil {
		t.Fatal(err)
	}
	eng := e.engine(cfg, e.em.SM)
	for i := range 2 {
		if err := eng.Handle(ctx, events.SecretsManagerSecretRotationEvent{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token}); err != nil {
			t.Fatalf("createSecret run %d: %v", i+1, err)
		}
	}
	pending := e.doc(arn, "AWSPENDING")
	set, err := e.accessor(arn).KeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range set.Keys {
		got = append(got, k.KeyID)
		if !k.IsPublic() {
			t.Fatal("the key set holds a private key")
		}
	}
	slices.Sort(got)
	want := []string{k1, token}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("key set during rotation %v, want %v", got, want)
	}
	tok, err := jwks.SignWith(pending, []byte("early"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.accessor(arn).Verify(ctx, tok); err != nil {
		t.Fatalf("a token of the pending key does not verify during rotation: %v", err)
	}
	for _, step := range localrun.Steps[1:] {
		for i := range 2 {
			if err := eng.Handle(ctx, events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}); err != nil {
				t.Fatalf("%s run %d: %v", step, i+1, err)
			}
		}
	}
	st := e.stages(arn)
	if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[k1], "AWSPREVIOUS") {
		t.Fatalf("stages %v", st)
	}
	if d := e.doc(arn, "AWSCURRENT"); d.KID != pending.KID || string(mustJSON(t, d)) != string(mustJSON(t, pending)) {
		t.Fatal("the current version is not the pending one created first")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGraceAcrossRotations(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	cfg := config(t, map[string]string{"GRACE_PERIOD": "2d"})
	cfg.Now = func() time.Time { return now }
	arn := testbed.CreateSecret(t, e.em, "{}")
	var toks, kids []string
	for i := range 3 {
		now = now.Add(12 * time.Hour)
		kids = append(kids, e.rotate(arn, cfg))
		tok, err := e.accessor(arn).Sign(ctx, fmt.Appendf(nil, "%d", i))
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	if got := kidsOf(e.doc(arn, "AWSCURRENT")); !slices.Equal(got, []string{kids[2], kids[1], kids[0]}) {
		t.Fatalf("jwks %v", got)
	}
	acc := e.accessor(arn)
	for i, tok := range toks {
		if _, err := acc.Verify(ctx, tok); err != nil {
			t.Fatalf("token of key %d within grace: %v", i+1, err)
		}
	}
	// Five days on, keys 1 and 2 are past the 2-day grace: the new version
	// does not carry them, and the accessor does not take them from
	// AWSPREVIOUS (key 3's version) either. Key 3 is always carried.
	now = now.Add(5 * 24 * time.Hour)
	kids = append(kids, e.rotate(arn, cfg))
	if got := kidsOf(e.doc(arn, "AWSCURRENT")); !slices.Equal(got, []string{kids[3], kids[2]}) {
		t.Fatalf("jwks after aging %v, want [%s %s]", got, kids[3], kids[2])
	}
	if _, err := e.accessor(arn).Verify(ctx, toks[2]); err != nil {
		t.Fatalf("token of key 3 (AWSPREVIOUS): %v", err)
	}
	for i, tok := range toks[:2] {
		_, err := e.accessor(arn).Verify(ctx, tok)
		if !errors.Is(err, jwks.ErrUnknownKey) || !strings.Contains(err.Error(), kids[i]) {
			t.Fatalf("token of aged-out key %d: %v, want ErrUnknownKey naming %s", i+1, err, kids[i])
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	withPrivateInJWKS := func() string {
		arn := testbed.CreateSecret(t, e.em, "{}")
		e.rotate(arn, config(t, nil))
		var m map[string]any
		_ = json.Unmarshal([]byte(testbed.ValueAt(t, e.em, arn, "AWSCURRENT")), &m)
		m["jwks"] = map[string]any{"keys": []any{m["jwk"]}}
		return string(mustJSON(t, m))
	}()
	cases := []struct{ name, value, want string }{
		{"not a JWK document", `{"username":"u","password":"p4ss"}`, "no kid"},
		{"not JSON", "p4ss-plain", "not a JSON object"},
		{"unknown algorithm", `{"kid":"k","alg":"HS256"}`, `"HS256"`},
		{"bad jwk", `{"kid":"k","alg":"ES256","jwk":{"kty":"EC","d":"p4ss"}}`, `"jwk"`},
		{"private key in the JWKS", withPrivateInJWKS, "private key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			arn := testbed.CreateSecret(t, e.em, c.value)
			token := localrun.NewToken()
			if _, err := e.em.OpenRotation(ctx, arn, token); err != nil {
				t.Fatal(err)
			}
			before := fmt.Sprint(e.stages(arn))
			err := e.engine(config(t, nil), e.em.SM).Handle(ctx, events.SecretsManagerSecretRotationEvent{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %q", err, c.want)
			}
			if strings.Contains(err.Error(), "p4ss") || strings.Contains(err.Error(), `"d"`) {
				t.Fatal("error quotes the secret value")
			}
			if after := fmt.Sprint(e.stages(arn)); after != before {
				t.Fatalf("stages changed: %s -> %s", before, after)
			}
			if testbed.ValueAt(t, e.em, arn, "AWSCURRENT") != c.value {
				t.Fatal("current value changed")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"unknown alg":     {map[string]string{"JWT_ALG": "HS256"}, `JWT_ALG="HS256" is not one of ES256, RS256, EdDSA`},
		"rsa bits":        {map[string]string{"JWT_ALG": "RS256", "RSA_KEY_BITS": "1024"}, "RSA_KEY_BITS"},
		"bits without rs": {map[string]string{"RSA_KEY_BITS": "2048"}, "RS256 only"},
		"grace":           {map[string]string{"GRACE_PERIOD": "4000d"}, "GRACE_PERIOD"},
	} {
		if _, err := jwtkeys.ConfigFromEnv(func(k string) string { return c.env[k] }); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
	}
	if cfg := config(t, nil); cfg.Alg != "ES256" || cfg.Grace != 24*time.Hour || cfg.RSABits != 0 {
		t.Fatalf("defaults %+v", cfg)
	}
}

// TestCrashAtEveryCall kills each step after each of its Secrets Manager
// calls, reruns it in a fresh engine and finishes the rotation: the end
// state is that of an uninterrupted rotation, and a token signed with the
// old key verifies throughout.
func TestCrashAtEveryCall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := config(t, nil)
	for si, step := range localrun.Steps {
		for k := 0; ; k++ {
			arn := testbed.CreateSecret(t, e.em, "{}")
			old := e.rotate(arn, cfg)
			oldTok, err := e.accessor(arn).Sign(ctx, []byte("old"))
			if err != nil {
				t.Fatal(err)
			}
			token := localrun.NewToken()
			if _, err := e.em.OpenRotation(ctx, arn, token); err != nil {
				t.Fatal(err)
			}
			ev := func(s string) events.SecretsManagerSecretRotationEvent {
				return events.SecretsManagerSecretRotationEvent{Step: s, SecretID: arn, ClientRequestToken: token}
			}
			eng := e.engine(cfg, e.em.SM)
			for _, prior := range localrun.Steps[:si] {
				if err := eng.Handle(ctx, ev(prior)); err != nil {
					t.Fatalf("%s: %v", prior, err)
				}
			}
			err = e.engine(cfg, secretsmanager.NewFromConfig((&testbed.Crasher{K: k}).Config(e.cfg))).Handle(ctx, ev(step))
			if err == nil {
				if k == 0 {
					t.Fatalf("%s made no call", step)
				}
				break
			}
			if !errors.Is(err, testbed.ErrCrash) {
				t.Fatalf("%s crashed after %d calls: unexpected error %v", step, k, err)
			}
			if _, err := e.accessor(arn).Verify(ctx, oldTok); err != nil {
				t.Fatalf("%s crashed after %d calls: old token: %v", step, k, err)
			}
			fresh := e.engine(cfg, e.em.SM)
			for _, rest := range localrun.Steps[si:] {
				if err := fresh.Handle(ctx, ev(rest)); err != nil {
					t.Fatalf("%s crashed after %d calls; rerun of %s: %v", step, k, rest, err)
				}
			}
			if err := e.em.CloseRotation(ctx, arn, token); err != nil {
				t.Fatal(err)
			}
			st := e.stages(arn)
			if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[old], "AWSPREVIOUS") {
				t.Fatalf("%s crashed after %d calls: stages %v", step, k, st)
			}
			if got := kidsOf(e.doc(arn, "AWSCURRENT")); !slices.Equal(got, []string{token, old}) {
				t.Fatalf("%s crashed after %d calls: jwks %v", step, k, got)
			}
			acc := e.accessor(arn)
			if _, err := acc.Verify(ctx, oldTok); err != nil {
				t.Fatalf("%s crashed after %d calls: old token after rotation: %v", step, k, err)
			}
			newTok, err := acc.Sign(ctx, []byte("new"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := acc.Verify(ctx, newTok); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: crash after %d calls recovered", step, k)
		}
	}
}

// TestLogsCarryNoPrivateKey scans every log line of full rotations with
// each algorithm for the private JWK and each of its private members.
func TestLogsCarryNoPrivateKey(t *testing.T) {
	e := newEnv(t)
	var secrets []string
	for _, m := range []map[string]string{{}, {"JWT_ALG": "RS256"}, {"JWT_ALG": "EdDSA"}} {
		arn := testbed.CreateSecret(t, e.em, "{}")
		for range 2 {
			e.rotate(arn, config(t, m))
			var v struct {
				JWK map[string]any `json:"jwk"`
			}
			if err := json.Unmarshal([]byte(testbed.ValueAt(t, e.em, arn, "AWSCURRENT")), &v); err != nil {
				t.Fatal(err)
			}
			for _, member := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if s, ok := v.JWK[member].(string); ok {
					secrets = append(secrets, s, s[:len(s)/2])
				}
			}
		}
	}
	if len(secrets) < 2*(2+2*6+2) {
		t.Fatalf("only %d private values collected", len(secrets))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "signing key generated") || !strings.Contains(logs, "pending signing key works") {
		t.Fatal("the logs lack the target's lines: the scan would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatal("log output contains private key material")
		}
	}
	if strings.Contains(logs, `"d":`) || strings.Contains(logs, `\"d\"`) {
		t.Fatal("log output contains a JWK d member")
	}
}
