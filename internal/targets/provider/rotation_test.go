package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/provider"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed/keyprovider"
)

// Three rotations of each configuration: the first makes the first key; from
// the second on, the replaced key stays valid (AWSPREVIOUS, the grace
// period) and the one before it is revoked; other fields are kept.
func TestRotationsKeepPreviousUntilNextRotation(t *testing.T) {
	for _, config := range []string{"saas", "accounts"} {
		t.Run(config, func(t *testing.T) {
			f := newFixture(t, config, keyprovider.Options{})
			arn := testbed.CreateSecret(t, f.em, `{"owner":"team-a","limits":{"rps":1.5}}`)
			var ids, keys []string
			for i := range 3 {
				f.rotate(arn)
				ids = append(ids, f.field(arn, "AWSCURRENT", f.idField))
				keys = append(keys, f.field(arn, "AWSCURRENT", f.keyField))
				if !f.prov.Valid(keys[i]) {
					t.Fatalf("rotation %d: the current key does not work at the provider", i+1)
				}
				if i > 0 {
					if !f.prov.Valid(keys[i-1]) {
						t.Fatalf("rotation %d: the previous key was revoked within its grace period", i+1)
					}
					if got := f.field(arn, "AWSCURRENT", "replacedKeyId"); got != ids[i-1] {
						t.Errorf("rotation %d: replacedKeyId %q, want %q", i+1, got, ids[i-1])
					}
				}
			}
			f.wantLive("after three rotations", ids[1], ids[2])
			if f.prov.Valid(keys[0]) {
				t.Error("the key of rotation 1 still works after rotation 3")
			}
			var doc map[string]any
			_ = json.Unmarshal([]byte(testbed.ValueAt(t, f.em, arn, "AWSCURRENT")), &doc)
			if doc["owner"] != "team-a" || doc["issuedAt"] == nil {
				t.Errorf("fields lost or issuedAt missing: %v", doc["owner"])
			}
		})
	}
}

// GRACE_PERIOD=0 revokes the replaced key as soon as AWSCURRENT moved.
func TestGracePeriodZero(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	f.env["GRACE_PERIOD"] = "0"
	arn := testbed.CreateSecret(t, f.em, `{}`)
	f.rotate(arn)
	first := f.field(arn, "AWSCURRENT", "keyId")
	f.rotate(arn)
	f.wantLive("GRACE_PERIOD=0", f.field(arn, "AWSCURRENT", "keyId"))
	if f.field(arn, "AWSPREVIOUS", "keyId") != first {
		t.Error("AWSPREVIOUS does not hold the revoked first key")
	}
}

// Every step run twice, each by a fresh instance, ends as one run does.
func TestEachStepTwice(t *testing.T) {
	for _, config := range []string{"saas", "accounts"} {
		t.Run(config, func(t *testing.T) {
			f := newFixture(t, config, keyprovider.Options{})
			arn := testbed.CreateSecret(t, f.em, `{}`)
			f.rotate(arn)
			f.rotate(arn)
			prev := f.field(arn, "AWSCURRENT", f.idField)
			token := f.open(arn)
			for _, step := range localrun.Steps {
				for run := range 2 {
					if err := f.invoke(f.engine(), step, arn, token); err != nil {
						t.Fatalf("%s run %d: %v", step, run+1, err)
					}
				}
			}
			f.wantLive("each step twice", prev, f.field(arn, "AWSCURRENT", f.idField))
		})
	}
}

// A crashed createSecret is rerun: with a provider that honours
// Idempotency-Key the replayed answer gives the same key; with one that
// does not, the key the crashed attempt made is found by its name and
// revoked. Either way one key per rotation.
func TestRerunAfterCreateAtTheProvider(t *testing.T) {
	for _, noIdem := range []bool{false, true} {
		f := newFixture(t, "saas", keyprovider.Options{NoIdempotency: noIdem})
		arn := testbed.CreateSecret(t, f.em, `{}`)
		token := f.open(arn)
		// Die right after the provider made the key: the crasher counts
		// the Secrets Manager calls (Describe, pending, current, admin
		// secret) and the list before it.
		c := &testbed.Crasher{K: 6}
		err := f.invoke(f.engineWith(c.Config(f.awsCfg), provider.WrapTransport(c.Transport)), rotation.StepCreate, arn, token)
		if !isCrash(err) || c.Ops[len(c.Ops)-1] != "POST /v1/keys" {
			t.Fatalf("no idempotency %v: want a crash after POST /v1/keys, got %v after %v", noIdem, err, c.Ops)
		}
		if len(f.live()) != 1 {
			t.Fatalf("the crashed attempt made %d keys", len(f.live()))
		}
		for _, step := range localrun.Steps {
			if err := f.invoke(f.engine(), step, arn, token); err != nil {
				t.Fatalf("no idempotency %v: %s: %v", noIdem, step, err)
			}
		}
		f.wantLive("after the rerun", f.field(arn, "AWSCURRENT", "keyId"))
		replays := 0
		for _, r := range f.prov.Requests() {
			if r.Method == "POST" && r.IdempotencyKey != token {
				t.Errorf("POST /v1/keys without the rotation token as Idempotency-Key")
			}
			if r.Method == "DELETE" {
				replays--
			}
		}
		if noIdem && replays != -1 {
			t.Errorf("without idempotency the crashed attempt's key should be revoked once, DELETEs: %d", -replays)
		}
		if !noIdem && replays != 0 {
			t.Errorf("with idempotency nothing should be revoked, DELETEs: %d", -replays)
		}
	}
}

// A key made by a rotation that was abandoned before it stored anything is
// revoked by the next rotation's createSecret.
func TestAbandonedRotationKeyIsRevoked(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{NoIdempotency: true})
	arn := testbed.CreateSecret(t, f.em, `{}`)
	f.rotate(arn)
	first := f.field(arn, "AWSCURRENT", "keyId")
	token := f.open(arn)
	c := &testbed.Crasher{K: 6}
	if err := f.invoke(f.engineWith(c.Config(f.awsCfg), provider.WrapTransport(c.Transport)), rotation.StepCreate, arn, token); !isCrash(err) {
		t.Fatal(err)
	}
	// Secrets Manager gives up; an operator clears AWSPENDING and a new
	// rotation starts with another token.
	if err := f.em.CloseRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	f.rotate(arn)
	f.wantLive("after the abandoned rotation", first, f.field(arn, "AWSCURRENT", "keyId"))
}

// A provider that rate-limits: the 429s are retried after Retry-After, and
// the rotation succeeds; a Retry-After beyond the step's deadline fails at
// once, with nothing stored.
func TestRateLimit(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	arn := testbed.CreateSecret(t, f.em, `{}`)
	f.prov.RateLimit(2, "1")
	f.rotate(arn)
	limited := 0
	for _, r := range f.prov.Requests() {
		if r.Status == 429 {
			limited++
		}
	}
	if limited != 2 {
		t.Fatalf("the provider answered 429 %d times, want 2", limited)
	}
	if !strings.Contains(f.logs.String(), `"provider rate limit: retrying"`) {
		t.Error("no log line for the retries")
	}

	token := f.open(arn)
	f.prov.RateLimit(1, "600")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := f.engine().Handle(ctx, events.SecretsManagerSecretRotationEvent{Step: rotation.StepCreate, SecretID: arn, ClientRequestToken: token})
	if !errors.Is(err, provider.ErrRateLimited) {
		t.Fatalf("error %v, want ErrRateLimited", err)
	}
	if _, err := f.em.SM.GetSecretValue(context.Background(), getVersion(arn, token)); err == nil {
		t.Error("a pending value was stored")
	}
	f.prov.RateLimit(0, "")
}

// At the provider's key limit the error says so and names every key; nothing
// is stored and no key is touched.
func TestKeyLimit(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{MaxKeys: 2})
	a, _ := f.prov.AddKey("ci")
	b, _ := f.prov.AddKey("ops")
	arn := testbed.CreateSecret(t, f.em, `{}`)
	token := f.open(arn)
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	if !errors.Is(err, provider.ErrKeyLimit) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) || !strings.Contains(err.Error(), "409") {
		t.Fatalf("error %v, want the key limit with both key ids", err)
	}
	f.wantLive("after the refusal", a, b)
	if _, err := f.em.SM.GetSecretValue(context.Background(), getVersion(arn, token)); err == nil {
		t.Error("a pending value was stored")
	}
}

// At the key limit, with a provider that ignores Idempotency-Key, the key
// that a crashed createSecret made takes the last place: the rerun revokes
// it and makes its own instead of failing for ever.
func TestKeyLimitAfterACrashedCreate(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{MaxKeys: 3, NoIdempotency: true})
	arn := testbed.CreateSecret(t, f.em, `{}`)
	f.rotate(arn)
	f.rotate(arn)
	cur := f.field(arn, "AWSCURRENT", "keyId")
	token := f.open(arn)
	c := &testbed.Crasher{K: 6}
	if err := f.invoke(f.engineWith(c.Config(f.awsCfg), provider.WrapTransport(c.Transport)), rotation.StepCreate, arn, token); !isCrash(err) || c.Ops[5] != "POST /v1/keys" {
		t.Fatalf("want a crash after POST /v1/keys, got %v after %v", err, c.Ops)
	}
	if len(f.live()) != 3 {
		t.Fatalf("the account should be full: %v", f.live())
	}
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	f.wantLive("after the rerun at the limit", cur, f.field(arn, "AWSCURRENT", "keyId"))
}

// A provider answering 5xx: the error names the request and the status;
// the body goes to the log redacted (it echoes the admin credential here);
// nothing is stored and no key is left; the retry succeeds.
func TestProviderErrorLeavesNothing(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	arn := testbed.CreateSecret(t, f.em, `{}`)
	token := f.open(arn)
	f.prov.FailNext("POST", "/v1/keys", 503, `{"error":"backend down","debug":"Authorization: Bearer `+f.prov.AdminToken+`"}`)
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	var pe *provider.ProviderError
	if !errors.As(err, &pe) || pe.Request != "create" || pe.Status != 503 || !strings.Contains(err.Error(), "createSecret") {
		t.Fatalf("error %v, want the create request's 503", err)
	}
	if !strings.Contains(f.logs.String(), "backend down") || !strings.Contains(f.logs.String(), "[REDACTED]") {
		t.Error("the provider's explanation was not logged, or not redacted")
	}
	f.wantLive("after the 503")
	for _, step := range localrun.Steps {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatalf("retry %s: %v", step, err)
		}
	}
	f.wantLive("after the retry", f.field(arn, "AWSCURRENT", "keyId"))
}

// A create answer without the key (or without its id): the key the provider
// made is revoked, nothing is stored, and the error says what was missing.
func TestCreateAnswerWithoutKey(t *testing.T) {
	for _, omit := range []string{"key", "id"} {
		f := newFixture(t, "saas", keyprovider.Options{NoIdempotency: true})
		arn := testbed.CreateSecret(t, f.em, `{}`)
		token := f.open(arn)
		f.prov.OmitFromCreate(omit)
		err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
		if err == nil || !strings.Contains(err.Error(), "answer has no") || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("omit %s: error %v", omit, err)
		}
		f.wantLive("omit " + omit)
		f.prov.OmitFromCreate("")
	}
}

// A provider that does not answer within the configured timeout.
func TestProviderTimeout(t *testing.T) {
	f := newFixture(t, "accounts", keyprovider.Options{})
	var doc map[string]any
	_ = json.Unmarshal([]byte(accountsConfig), &doc)
	doc["timeout"] = "300ms"
	b, _ := json.Marshal(doc)
	f.env["PROVIDER_CONFIG"] = string(b)
	arn := testbed.CreateSecret(t, f.em, `{}`)
	token := f.open(arn)
	f.prov.Delay(2 * time.Second)
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	f.prov.Delay(0)
	if err == nil || !strings.Contains(err.Error(), "list: GET") || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("error %v, want the list request's timeout", err)
	}
}

// testSecret fails when the provider refuses the pending key, and
// AWSCURRENT stays where it was.
func TestTestSecretRejectsARevokedKey(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	arn := testbed.CreateSecret(t, f.em, `{}`)
	f.rotate(arn)
	cur := f.field(arn, "AWSCURRENT", "keyId")
	token := f.open(arn)
	if err := f.invoke(f.engine(), rotation.StepCreate, arn, token); err != nil {
		t.Fatal(err)
	}
	var pending map[string]string
	_ = json.Unmarshal([]byte(testbed.ValueOf(t, f.em, arn, token)), &pending)
	f.prov.FailNext("GET", "/v1/me", 401, `{"error":"invalid api key: `+pending["apiKey"]+`"}`)
	err := f.invoke(f.engine(), rotation.StepTest, arn, token)
	if err == nil || !strings.Contains(err.Error(), pending["keyId"]) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("testSecret error %v, want the pending key's 401", err)
	}
	if f.field(arn, "AWSCURRENT", "keyId") != cur {
		t.Error("AWSCURRENT moved")
	}
}

// The secret's content is untrusted: a writer who puts another key's id
// into the secret cannot make the function revoke that key with the admin
// credential, nor activate it.
func TestForeignKeyIDIsNeverRevoked(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	victim, _ := f.prov.AddKey("billing-service")
	arn := testbed.CreateSecret(t, f.em, `{"keyId":"`+victim+`","apiKey":"whatever"}`)
	for range 3 {
		f.rotate(arn)
	}
	live := f.live()
	found := false
	for _, id := range live {
		found = found || id == victim
	}
	if !found {
		t.Fatal("the function revoked a key the secret merely named")
	}
	if !strings.Contains(f.logs.String(), "key not revoked: nothing proves this function made it") {
		t.Error("no warning about the unproven key")
	}
}

func TestActivateRefusesAPlantedPendingKey(t *testing.T) {
	f := newFixture(t, "saas", keyprovider.Options{})
	var doc map[string]any
	b, _ := json.Marshal(readJSON(t, f.env["PROVIDER_CONFIG_FILE"]))
	_ = json.Unmarshal(b, &doc)
	doc["activate"] = map[string]any{
		"method": "PUT", "path": "/v1/keys/{{key_id}}/scopes", "auth": "admin",
		"headers": map[string]any{"Authorization": "Bearer {{admin.token}}"}, "json": map[string]any{"scopes": []any{"read"}},
	}
	b, _ = json.Marshal(doc)
	delete(f.env, "PROVIDER_CONFIG_FILE")
	f.env["PROVIDER_CONFIG"] = string(b)
	victim, _ := f.prov.AddKey("billing-service")
	arn := testbed.CreateSecret(t, f.em, `{}`)
	token := f.open(arn)
	// The writer stores the pending value before createSecret runs.
	if _, err := f.em.SM.PutSecretValue(context.Background(), putPending(arn, token, `{"keyId":"`+victim+`","apiKey":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := f.invoke(f.engine(), rotation.StepCreate, arn, token); err != nil {
		t.Fatal(err)
	}
	err := f.invoke(f.engine(), rotation.StepSet, arn, token)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), victim) {
		t.Fatalf("setSecret error %v, want a refusal naming the planted key id", err)
	}
	for _, r := range f.prov.Requests() {
		if r.Method == "PUT" {
			t.Fatalf("the activate request was sent for the planted key: %v", r)
		}
	}

	// The key a rotation made itself is activated.
	if err := f.em.CloseRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	f.rotate(arn)
	id := f.field(arn, "AWSCURRENT", "keyId")
	for _, k := range f.prov.Keys() {
		if k.ID == id && (len(k.Scopes) != 1 || k.Scopes[0] != "read") {
			t.Fatalf("the rotation's own key %s was not activated: scopes %v", id, k.Scopes)
		}
	}
}
