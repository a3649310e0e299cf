package rabbitmq_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// rotation runs the steps of rotations of one secret through the engine,
// counting the driver's logins per step.
type rotationRun struct {
	t   *testing.T
	b   *bed
	drv *countingDriver
	h   *dbtest.Harness
}

func newRotationRun(t *testing.T, b *bed) *rotationRun {
	drv := &countingDriver{Driver: rabbitmq.Driver{}}
	tgt := account.New(b.config(nil), drv, secretsmanager.NewFromConfig(awsConfig(t)))
	return &rotationRun{t: t, b: b, drv: drv, h: dbtest.NewHarness(t, tgt)}
}

// rotate runs one rotation step by step, checking each step's logins
// against want, and closes it as Secrets Manager does.
func (r *rotationRun) rotate(arn string, want map[string]int) {
	r.t.Helper()
	token := r.h.Open(arn)
	for _, step := range localrun.Steps {
		before, _ := r.drv.counts()
		if err := r.h.Step(nil, step, arn, token); err != nil {
			r.t.Fatalf("%s: %v", step, err)
		}
		if after, _ := r.drv.counts(); after-before != want[step] {
			r.t.Errorf("%s: %d logins, want %d", step, after-before, want[step])
		}
	}
	if err := r.h.Em.CloseRotation(context.Background(), arn, token); err != nil {
		r.t.Fatal(err)
	}
}

// TestAlternatingUsersRotation: three rotations of an alternating-users
// secret. The first makes <user>_clone with the user's tags, limits, vhost
// permissions and topic permissions; each leaves AWSCURRENT and AWSPREVIOUS
// logging in over AMQP. Logins: setSecret proves control of the idle user
// (AMQP) and logs in as the master (management API), testSecret logs in
// with AWSPENDING; none refused, by the driver's count, the broker's
// counter or its log. Neither the function's log nor the broker's shows a
// password or a stored hash.
func TestAlternatingUsersRotation(t *testing.T) {
	b := newBed(t)
	r := newRotationRun(t, b)
	masterARN, master, mpw := b.master(t, r.h.Em)
	user, pw := b.user(t, "alt_", "policymaker")
	clone := user + rabbitmq.CloneSuffix
	vh := rabbitmqtest.Name("vh_")
	b.CreateVHost(t, vh)
	b.API(t, http.MethodPut, []string{"api", "permissions", vh, user}, map[string]string{"configure": "^$", "write": "^out\\.", "read": "^in\\."})
	b.API(t, http.MethodPut, []string{"api", "topic-permissions", "/", user}, map[string]string{"exchange": "amq.topic", "write": "^a\\.", "read": ".*"})
	b.API(t, http.MethodPut, []string{"api", "user-limits", user, "max-connections"}, map[string]int64{"value": 20})
	arn := testbed.CreateSecret(t, r.h.Em, dbtest.SecretJSON(t, b.secret(user, pw, map[string]any{"masterarn": masterARN, "app_setting": "kept"})))

	failedBefore, log := b.FailedLogins(t), b.LogFrom(t)
	seen := []string{pw, mpw}
	want := map[string]int{rotation.StepCreate: 0, rotation.StepSet: 2, rotation.StepTest: 1, rotation.StepFinish: 0}
	for i, wantUser := range []string{clone, user, clone} {
		r.rotate(arn, want)
		cur, prev := r.h.At(arn, "AWSCURRENT"), r.h.At(arn, "AWSPREVIOUS")
		if cur.Username != wantUser || prev.Username == cur.Username {
			t.Fatalf("rotation %d: AWSCURRENT names %s, AWSPREVIOUS %s; want %s and the other", i+1, cur.Username, prev.Username, wantUser)
		}
		for _, v := range []*dbsecret.Secret{cur, prev} {
			if err := b.login(t, v); err != nil {
				t.Fatalf("rotation %d: %s does not log in: %v", i+1, v.Username, err)
			}
		}
		if raw, _ := cur.Raw("app_setting"); string(raw) != `"kept"` {
			t.Fatalf("rotation %d: the secret's other fields were not kept", i+1)
		}
		seen = append(seen, cur.Password)
		if o, c := rightsOf(t, b.admin, user), rightsOf(t, b.admin, clone); !sameRights(o, c) {
			t.Fatalf("rotation %d: the clone's rights\n%+v\ndiffer from the user's\n%+v", i+1, c, o)
		}
	}
	if o := rightsOf(t, b.admin, user); len(o.Perms) != 2 || len(o.Topics) != 1 || o.Limits["max-connections"] != 20 || len(o.Tags) != 1 {
		t.Fatalf("the user's rights changed: %+v", o)
	}
	logins, refused := r.drv.counts()
	failed := b.FailedLogins(t) - failedBefore
	lines := log.Until(t, b.Server)
	logged := refusedFor(lines, user, clone, master)
	t.Logf("3 alternating rotations: %d logins (%d as the master user), %d refused by the driver's count; broker: %d failed AMQP authentications, %d refusals logged",
		logins, r.drv.master, refused, failed, logged)
	if refused != 0 || failed != 0 || logged != 0 {
		t.Fatalf("refused logins: driver %d, broker counter %d, broker log %d; want 0", refused, failed, logged)
	}
	secrets := append(seen, hashesOf(t, b, user, clone)...)
	r.h.AssertNoSecretInLogs(secrets...)
	assertNotInLines(t, "the broker log", lines, secrets)
}

// TestSingleUserRotation: a secret that asks for "single-user" keeps its
// user; the master user replaces the password once AWSCURRENT proved the
// secret controls the user. The old password stops working at setSecret
// (see TestZeroDowntimeSingleUser for what clients see), no clone is made,
// and the broker refuses no login of the rotation itself.
func TestSingleUserRotation(t *testing.T) {
	b := newBed(t)
	r := newRotationRun(t, b)
	arn, user, pw := b.rotated(t, r.h.Em, "single_", true)
	failedBefore, log := b.FailedLogins(t), b.LogFrom(t)
	want := map[string]int{rotation.StepCreate: 0, rotation.StepSet: 2, rotation.StepTest: 1, rotation.StepFinish: 0}
	seen := []string{pw}
	for i := range 2 {
		r.rotate(arn, want)
		cur := r.h.At(arn, "AWSCURRENT")
		if cur.Username != user || cur.Password == seen[len(seen)-1] {
			t.Fatalf("rotation %d: AWSCURRENT names %s, password changed %v", i+1, cur.Username, cur.Password != seen[len(seen)-1])
		}
		if err := b.login(t, cur); err != nil {
			t.Fatalf("rotation %d: AWSCURRENT does not log in: %v", i+1, err)
		}
		seen = append(seen, cur.Password)
	}
	for _, old := range seen[:len(seen)-1] {
		if ok, err := b.admin.HasPassword(context.Background(), user, old); err != nil || ok {
			t.Fatalf("an old password is still the user's (%v, %v)", ok, err)
		}
	}
	if _, err := b.admin.User(context.Background(), user+rabbitmq.CloneSuffix); !errors.Is(err, rabbitmq.ErrNoUser) {
		t.Fatalf("a clone was made: %v", err)
	}
	failed := b.FailedLogins(t) - failedBefore
	lines := log.Until(t, b.Server)
	if logged := refusedFor(lines, user); failed != 0 || logged != 0 {
		t.Fatalf("the rotation made the broker refuse logins: counter %d, log %d", failed, logged)
	}
	r.h.AssertNoSecretInLogs(append(seen, hashesOf(t, b, user)...)...)
}

// TestStepsConvergeWhenRunTwice runs every step twice in a row, for both
// strategies: the second run of each converges on the first's state. A
// retried setSecret finds AWSPENDING set, at the cost of the one refused
// login of its recovery: single user, AWSCURRENT no longer logs in;
// alternating, AWSPREVIOUS no longer does, except in the first rotation,
// which proves control with the base user's AWSCURRENT again and completes
// the clone again.
func TestStepsConvergeWhenRunTwice(t *testing.T) {
	b := newBed(t)
	for _, single := range []bool{false, true} {
		name := map[bool]string{false: "alternating users", true: "single user"}[single]
		t.Run(name, func(t *testing.T) {
			r := newRotationRun(t, b)
			arn, user, _ := b.rotated(t, r.h.Em, "twice_", single)
			for round := range 2 { // alternating: to the clone and back
				log := b.LogFrom(t)
				token := r.h.Open(arn)
				for _, step := range localrun.Steps {
					for run := 1; run <= 2; run++ {
						if err := r.h.Step(nil, step, arn, token); err != nil {
							t.Fatalf("round %d, %s run %d: %v", round+1, step, run, err)
						}
					}
				}
				if err := r.h.Em.CloseRotation(context.Background(), arn, token); err != nil {
					t.Fatal(err)
				}
				if err := b.login(t, r.h.At(arn, "AWSCURRENT")); err != nil {
					t.Fatalf("round %d: AWSCURRENT does not log in: %v", round+1, err)
				}
				want := 1
				if !single && round == 0 {
					want = 0
				}
				if n := refusedFor(log.Until(t, b.Server), user, user+rabbitmq.CloneSuffix); n != want {
					t.Errorf("round %d: the broker logged %d refused logins, want %d", round+1, n, want)
				}
			}
		})
	}
}

// hashesOf returns the stored password hashes of the users that exist.
func hashesOf(t testing.TB, b *bed, users ...string) []string {
	var out []string
	for _, h := range b.storedHashes(t, users...) {
		out = append(out, h)
	}
	return out
}

// assertNotInLines fails if any of secrets appears in a line.
func assertNotInLines(t testing.TB, what string, lines, secrets []string) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatalf("%s: no lines to scan", what)
	}
	for _, s := range secrets {
		if len(s) < 6 {
			continue
		}
		for _, l := range lines {
			if strings.Contains(l, s) {
				t.Fatalf("%s shows a password or hash (line starting %.35q)", what, l)
			}
		}
	}
}
