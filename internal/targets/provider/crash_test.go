package provider_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/provider"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed/keyprovider"
)

// TestCrashAtEveryCall kills a rotation after each of its external calls in
// turn, Secrets Manager and provider alike (one count: testbed.Crasher
// counts the AWS calls and, through its Transport, the provider's requests),
// reruns the step that died in a fresh instance and finishes the rotation.
// After every crash point the provider must hold exactly the keys of
// AWSCURRENT and AWSPREVIOUS: no orphan, no duplicate, the key before them
// revoked; and at the crash point itself the current key still works.
//
// One secret goes through all crash points, one rotation each, so every
// rotation starts from the steady state (two keys) and ends in it.
func TestCrashAtEveryCall(t *testing.T) {
	for _, v := range []struct {
		name   string
		config string
		opts   keyprovider.Options
		// cold: each step runs in a fresh instance (as when Lambda hands
		// each invocation to another one), which reads what a warm one
		// remembers: more crash points.
		cold bool
		must []string // operations that must have been crash points
	}{
		{"saas, idempotent provider", "saas", keyprovider.Options{}, false,
			[]string{"DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage", "GET /v1/keys", "POST /v1/keys", "GET /v1/me", "DELETE /v1/keys/"}},
		{"saas, provider without idempotency", "saas", keyprovider.Options{NoIdempotency: true}, false,
			[]string{"POST /v1/keys", "DELETE /v1/keys/"}},
		{"saas, every step in a fresh instance", "saas", keyprovider.Options{}, true,
			[]string{"GetSecretValue", "GET /v1/me", "DELETE /v1/keys/"}},
		{"accounts, generated secret", "accounts", keyprovider.Options{}, false,
			[]string{"GET /v1/accounts", "PUT /v1/accounts/", "GET /v1/whoami", "DELETE /v1/accounts/", "PutSecretValue"}},
	} {
		t.Run(v.name, func(t *testing.T) {
			f := newFixture(t, v.config, v.opts)
			crashEveryCall(t, f, v.cold, v.must)
		})
	}
}

// crashEveryCall runs the crash test on f's provider: see
// TestCrashAtEveryCall.
func crashEveryCall(t *testing.T, f *fixture, cold bool, must []string) {
	arn := f.newSecret(`{"owner":"team-a"}`)
	f.rotate(arn)
	f.rotate(arn)
	var crashedAfter []string
	for k := 1; ; k++ {
		prevID := f.field(arn, "AWSPREVIOUS", f.idField)
		curID := f.field(arn, "AWSCURRENT", f.idField)
		token := f.open(arn)
		c := &testbed.Crasher{K: k}
		crashing := f.engineWith(c.Config(f.awsCfg), provider.WrapTransport(c.Transport))
		op := ""
		for _, step := range localrun.Steps {
			e := crashing
			if cold {
				e = f.engineWith(c.Config(f.awsCfg), provider.WrapTransport(c.Transport))
			}
			if op != "" {
				e = f.engine()
			}
			err := f.invoke(e, step, arn, token)
			if isCrash(err) && op == "" {
				op = c.Ops[len(c.Ops)-1]
				if !f.keyWorks(arn, "AWSCURRENT") {
					t.Fatalf("crash after call %d (%s) in %s: the current key no longer works", k, op, step)
				}
				err = f.invoke(f.engine(), step, arn, token)
			}
			if err != nil {
				t.Fatalf("crash after call %d (%q): %s: %v", k, op, step, err)
			}
		}
		if err := f.em.CloseRotation(t.Context(), arn, token); err != nil {
			t.Fatal(err)
		}
		newID := f.field(arn, "AWSCURRENT", f.idField)
		if f.field(arn, "AWSPREVIOUS", f.idField) != curID || newID == curID {
			t.Fatalf("crash after call %d (%s): the labels did not move", k, op)
		}
		f.wantLive(fmt.Sprintf("crash after call %d (%s)", k, op), curID, newID)
		if !f.keyWorks(arn, "AWSCURRENT") || !f.keyWorks(arn, "AWSPREVIOUS") {
			t.Fatalf("crash after call %d (%s): the new current key or the previous one does not work", k, op)
		}
		if slices.Contains(f.live(), prevID) {
			t.Fatalf("crash after call %d (%s): the key before AWSPREVIOUS was not revoked", k, op)
		}
		if op == "" {
			break // the rotation made fewer than k calls: every point is done
		}
		crashedAfter = append(crashedAfter, op)
	}
	t.Logf("%d crash points, 0 orphaned and 0 duplicate keys after each: %s", len(crashedAfter), strings.Join(crashedAfter, ", "))
	for _, m := range must {
		if !slices.ContainsFunc(crashedAfter, func(op string) bool { return strings.HasPrefix(op, m) }) {
			t.Errorf("no crash point after %s", m)
		}
	}
}
