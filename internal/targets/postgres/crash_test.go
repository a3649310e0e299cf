package postgres_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// someVersionLogsIn asserts the invariant: AWSCURRENT or AWSPENDING logs in.
func someVersionLogsIn(t *testing.T, h *dbtest.Harness, arn, when string) {
	t.Helper()
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING"} {
		if s, err := dbsecret.Parse(testbed.ValueAt(t, h.Em, arn, stage), dbsecret.Defaults{}); err == nil && login(t, s) == nil {
			return
		}
	}
	t.Fatalf("%s: no stored version logs in", when)
}

// TestCrashes: a setSecret that changed the password and died, a
// finishSecret that never ran, and a rotation abandoned midway followed by
// a retry: each time the next run succeeds and some version logs in.
func TestCrashes(t *testing.T) {
	user, pw := dbtest.PGUser(t, "crash", "")
	h := dbtest.NewHarness(t, newTarget(t))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil)))

	token := h.Open(arn)
	step := func(s string) {
		t.Helper()
		if err := h.Step(nil, s, arn, token); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		someVersionLogsIn(t, h, arn, "after "+s)
	}
	step("createSecret")
	step("setSecret") // changed the password; say the function died before returning
	step("setSecret") // Secrets Manager retries it: nothing left to do
	step("testSecret")
	// finishSecret never ran: AWSCURRENT no longer logs in, AWSPENDING does.
	someVersionLogsIn(t, h, arn, "finishSecret missing")
	// The retried rotation (same token, as Secrets Manager does while
	// AWSPENDING is on an unfinished version) completes.
	step("setSecret")
	step("testSecret")
	step("finishSecret")
	if err := h.Em.CloseRotation(t.Context(), arn, token); err != nil {
		t.Fatal(err)
	}
	mustLogIn(t, "AWSCURRENT after the finished retry", h.Current(arn))

	// Abandoned after createSecret: the new value was never set, so
	// AWSCURRENT still works and the next rotation starts afresh.
	token = h.Open(arn)
	step("createSecret")
	if err := h.Em.CloseRotation(t.Context(), arn, token); err != nil { // abandoned
		t.Fatal(err)
	}
	if _, err := h.Rotate(arn); err != nil {
		t.Fatalf("rotation after an abandoned one: %v", err)
	}
	mustLogIn(t, "AWSCURRENT", h.Current(arn))
	h.AssertNoSecretInLogs(pw, h.Current(arn).Password)
}
