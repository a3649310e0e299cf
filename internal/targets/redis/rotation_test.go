package redis_test

import (
	"context"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSingleUserRotation: the user keeps its old password while the new one
// is added and tested; after finishSecret it holds exactly the passwords
// of AWSCURRENT and AWSPREVIOUS, and older ones no longer log in. Four
// logins per rotation (the secret's proof and the master user at
// setSecret, the pending credentials at testSecret, the master user at
// finishSecret), none refused in the server's ACL LOG; every step runs
// twice and the second run changes nothing.
func TestSingleUserRotation(t *testing.T) {
	s := redistest.Settings(t)
	h, drv := harness(t)
	arn, user, pw := single(t, h, s, "single_")
	want := map[string]int{rotation.StepCreate: 0, rotation.StepSet: 2, rotation.StepTest: 1, rotation.StepFinish: 1}
	seen := []string{pw}
	checks := int64(0) // the test's own logins with removed passwords
	for r := 1; r <= 3; r++ {
		old := h.Current(arn)
		token := h.Open(arn)
		for _, step := range localrun.Steps {
			for run := 1; run <= 2; run++ {
				before := drv.count()
				if err := h.Step(nil, step, arn, token); err != nil {
					t.Fatalf("rotation %d, %s (run %d): %v", r, step, run, err)
				}
				if n := drv.count() - before; run == 1 && n != want[step] {
					t.Errorf("rotation %d, %s: %d logins, want %d", r, step, n, want[step])
				}
			}
			pend := h.At(arn, "AWSPENDING")
			switch step {
			case rotation.StepSet, rotation.StepTest:
				// The new password beside the old one: nobody is refused.
				if !logsIn(t, s, user, old.Password) || !logsIn(t, s, user, pend.Password) {
					t.Fatalf("rotation %d, after %s: the old and the new password must both log in", r, step)
				}
			}
		}
		if err := h.Em.CloseRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		cur := h.Current(arn)
		if cur.Username != user || cur.Password == old.Password {
			t.Fatalf("rotation %d: AWSCURRENT names %s, password changed %v", r, cur.Username, cur.Password != old.Password)
		}
		seen = append(seen, cur.Password)
		if n := passwordCount(t, s.Admin(t), user); n != 2 {
			t.Fatalf("rotation %d: the user holds %d passwords, want 2 (AWSCURRENT and AWSPREVIOUS)", r, n)
		}
		if !logsIn(t, s, user, cur.Password) || !logsIn(t, s, user, old.Password) {
			t.Fatalf("rotation %d: AWSCURRENT and AWSPREVIOUS must log in", r)
		}
		for _, p := range seen[:len(seen)-2] {
			checks++
			if logsIn(t, s, user, p) {
				t.Fatalf("rotation %d: a password older than AWSPREVIOUS still logs in", r)
			}
		}
	}
	if n := refused(t, s, user) - checks; n != 0 {
		// The test's own checks of the removed passwords are the only
		// refusals.
		t.Fatalf("the server's ACL LOG counts %d refused logins beyond the test's own checks", n)
	}
	if n := refused(t, s, s.AdminUser, user+redis.CloneSuffix); n != 0 {
		t.Fatalf("the server's ACL LOG counts %d refused logins of the master user or a clone", n)
	}
	h.AssertNoSecretInLogs(append(seen, s.AdminPassword)...)
	assertNoHashInLogs(t, h.Logs(), seen...)
	if !strings.Contains(h.Logs(), "passwords older than AWSPREVIOUS removed") {
		t.Fatal("finishSecret did not log the removal")
	}
}

// TestAlternatingUsersRotation: the secret moves between the user and its
// clone, which the master user makes with the original's ACL rules; the
// user of AWSPREVIOUS keeps working after each rotation; three logins per
// rotation, none refused in the server's ACL LOG.
func TestAlternatingUsersRotation(t *testing.T) {
	s := redistest.Settings(t)
	h, drv := harness(t)
	arn, user, pw := alternating(t, h, s, "alt_")
	clone := user + redis.CloneSuffix
	seen := []string{pw}
	prev := h.Current(arn)
	for i, want := range []string{clone, user, clone, user} {
		before := drv.count()
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if n := drv.count() - before; n != 3 {
			t.Errorf("rotation %d: %d logins, want 3", i+1, n)
		}
		cur := h.Current(arn)
		if cur.Username != want {
			t.Fatalf("rotation %d: AWSCURRENT names %s, want %s", i+1, cur.Username, want)
		}
		if !logsIn(t, s, cur.Username, cur.Password) || !logsIn(t, s, prev.Username, prev.Password) {
			t.Fatalf("rotation %d: AWSCURRENT and AWSPREVIOUS must both log in", i+1)
		}
		if n := passwordCount(t, s.Admin(t), cur.Username); n != 1 {
			t.Fatalf("rotation %d: %s holds %d passwords, want 1", i+1, cur.Username, n)
		}
		seen = append(seen, cur.Password)
		prev = cur
	}
	// The clone has the original's rights, and no more.
	for _, tc := range []struct {
		cmd  []any
		want bool
	}{
		{[]any{"get", "app:1"}, true},
		{[]any{"set", "app:1", "v"}, true},
		{[]any{"get", "other:1"}, false},
		{[]any{"acl", "setuser", "x"}, false},
		{[]any{"config", "get", "maxmemory"}, false},
	} {
		if got := dryRun(t, s, clone, tc.cmd...); got != tc.want {
			t.Errorf("the clone may run %v: %v, want %v", tc.cmd, got, tc.want)
		}
	}
	if n := refused(t, s, user, clone, s.AdminUser); n != 0 {
		t.Fatalf("the server's ACL LOG counts %d refused logins", n)
	}
	h.AssertNoSecretInLogs(append(seen, s.AdminPassword)...)
	assertNoHashInLogs(t, h.Logs(), seen...)
}

// TestFinishSecretRetriedAfterItsHookFailed: when removing the old
// passwords fails after AWSCURRENT moved (the master user cannot log in),
// finishSecret fails and the passwords stay; Secrets Manager's retry of
// finishSecret runs the removal again and completes it.
func TestFinishSecretRetriedAfterItsHookFailed(t *testing.T) {
	s := redistest.Settings(t)
	h, _ := harness(t)
	master, mpw := redistest.Name("master_"), redistest.Password()
	s.CreateUser(t, master, mpw, "on", "~*", "&*", "+@all")
	user, p0 := appUser(t, s, "retry_")
	masterARN := masterSecret(t, h.Em, s, map[string]any{"username": master, "password": mpw})
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, p0, map[string]any{"masterarn": masterARN})))
	if _, err := h.Rotate(arn); err != nil {
		t.Fatal(err)
	}
	p1 := h.Current(arn).Password
	token := h.Open(arn)
	for _, step := range localrun.Steps[:3] {
		if err := h.Step(nil, step, arn, token); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	admin := s.Client(t)
	if err := admin.Do(context.Background(), "ACL", "SETUSER", master, "off").Err(); err != nil {
		t.Fatal(err)
	}
	err := h.Step(nil, rotation.StepFinish, arn, token)
	if err == nil || !strings.Contains(err.Error(), "a retry of finishSecret runs the finish hook again") || !strings.Contains(err.Error(), "log in as master user "+master) {
		t.Fatalf("want finishSecret to fail in its hook, got %v", err)
	}
	if h.Current(arn).Password == p1 {
		t.Fatal("AWSCURRENT did not move")
	}
	if n := passwordCount(t, s.Admin(t), user); n != 3 {
		t.Fatalf("after the failed hook the user holds %d passwords, want 3 (none removed)", n)
	}
	if err := admin.Do(context.Background(), "ACL", "SETUSER", master, "on").Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.Step(nil, rotation.StepFinish, arn, token); err != nil {
		t.Fatalf("retried finishSecret: %v", err)
	}
	if !strings.Contains(h.Logs(), `"action":"finish_hook_rerun"`) {
		t.Fatalf("the retry did not rerun the hook:\n%s", h.Logs())
	}
	cur := h.Current(arn)
	if n := passwordCount(t, s.Admin(t), user); n != 2 || logsIn(t, s, user, p0) || !logsIn(t, s, user, p1) || !logsIn(t, s, user, cur.Password) {
		t.Fatalf("after the retry the user holds %d passwords; want AWSCURRENT's and AWSPREVIOUS's only", n)
	}
	h.AssertNoSecretInLogs(p0, p1, cur.Password, mpw)
}

// TestLeastPrivilegedMaster: the master user needs ACL GETUSER and ACL
// SETUSER and nothing else (docs/redis.md): both strategies rotate through
// such a user. (ACL SETUSER lets it give itself anything: it is an admin
// credential all the same.)
func TestLeastPrivilegedMaster(t *testing.T) {
	s := redistest.Settings(t)
	master, mpw := redistest.Name("aclonly_"), redistest.Password()
	s.CreateUser(t, master, mpw, "on", "resetkeys", "resetchannels", "-@all", "+acl|getuser", "+acl|setuser")
	for _, strategy := range []string{"single-user", "alternating-users"} {
		h, _ := harness(t)
		user, pw := appUser(t, s, "least_")
		masterARN := masterSecret(t, h.Em, s, map[string]any{"username": master, "password": mpw})
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "strategy": strategy})))
		for i := 0; i < 2; i++ {
			if _, err := h.Rotate(arn); err != nil {
				t.Fatalf("%s, rotation %d with a master user allowed only ACL GETUSER and SETUSER: %v", strategy, i+1, err)
			}
		}
		if cur := h.Current(arn); !logsIn(t, s, cur.Username, cur.Password) {
			t.Fatalf("%s: AWSCURRENT does not log in", strategy)
		}
	}
	if n := refused(t, s, master); n != 0 {
		t.Fatalf("the server's ACL LOG counts %d refused logins of the master user", n)
	}
}
