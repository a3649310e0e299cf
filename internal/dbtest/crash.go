package dbtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// CrashSpec describes one engine and one strategy to the crash tests, so
// that the same tests run for PostgreSQL and MariaDB, single user and
// alternating users. The strategy is the secret's: alternating when
// NewSecret stores a "masterarn".
type CrashSpec struct {
	// NewTarget returns the target with its AWS clients made from cfg, so
	// that a crashing configuration kills the target's own calls too.
	NewTarget func(cfg aws.Config) rotation.Target
	// NewCrashingTarget, when set, replaces NewTarget in CrashAtEveryCall:
	// it also routes the target's calls that are not AWS calls (a
	// management API's requests, a server login) through c
	// (Crasher.Transport, Crasher.DialContext), so that the function dies
	// after each of those as well.
	NewCrashingTarget func(cfg aws.Config, c *testbed.Crasher) rotation.Target
	// EachDirection: alternating users whose two directions make different
	// calls (to the clone, whose rights are synchronised, and back to the
	// base user, whose password alone is set): CrashAtEveryCall then dies
	// after every call of each direction, in twice the rotations.
	EachDirection bool
	// SeveralPasswords: a single user keeps several passwords (Redis ACL
	// users): setSecret adds the new one, finishSecret removes those older
	// than AWSPREVIOUS. After a rotation AWSPREVIOUS must log in as well,
	// and no older password of the secret.
	SeveralPasswords bool
	// NewSecret makes the database user (and, alternating, the master
	// user and its secret) and stores the secret to rotate; it returns the
	// secret's ARN.
	NewSecret func(t *testing.T, em *localrun.Emulator) string
	// Login logs in once with s and reports how it ended.
	Login func(t testing.TB, s *dbsecret.Secret) error
	// SetPassword sets the password of user as the administrator: the
	// tests use it to put the database in states no rotation leaves.
	SetPassword func(t testing.TB, user, password string)
	// MasterSetsSingleUser: the secret names a master secret, but its one
	// user is rotated, by the master user (a driver whose users cannot
	// change their own passwords).
	MasterSetsSingleUser bool
	// NewPassword makes the passwords the tests set themselves; nil is
	// Password (24 hex characters). A system with a password policy of its
	// own (Active Directory's complexity) gives one it accepts.
	NewPassword func() string
}

// password returns a new password that the spec's system accepts.
func (spec CrashSpec) password() string {
	if spec.NewPassword != nil {
		return spec.NewPassword()
	}
	return Password()
}

// alternating reports whether the spec rotates s with alternating users.
func (spec CrashSpec) alternating(s *dbsecret.Secret) bool {
	return s.Strategy() == dbsecret.AlternatingUsers && !spec.MasterSetsSingleUser
}

// addsPasswords reports whether the spec rotates s by adding a password
// beside the others (SeveralPasswords, single user).
func (spec CrashSpec) addsPasswords(s *dbsecret.Secret) bool {
	return spec.SeveralPasswords && !spec.alternating(s)
}

// crashRun is one crash test in progress.
type crashRun struct {
	t    *testing.T
	spec CrashSpec
	h    *Harness
	arn  string
	seen []string // every password stored, for the log scan
	// gap is set while an operator's removal of AWSPENDING has left the
	// one working password on an unlabelled version: the invariant then
	// asks for some stored version that logs in.
	gap bool
}

func newCrashRun(t *testing.T, spec CrashSpec) *crashRun {
	h := NewHarness(t, spec.NewTarget(testbed.AWSConfig(t)))
	r := &crashRun{t: t, spec: spec, h: h}
	r.arn = spec.NewSecret(t, h.Em)
	r.remember()
	return r
}

// remember adds the passwords of every version of the secret to seen.
func (r *crashRun) remember() {
	r.t.Helper()
	for _, id := range r.versionIDs() {
		if v, ok := r.value(id); ok {
			if s, err := dbsecret.Parse(v, dbsecret.Defaults{}); err == nil && !slices.Contains(r.seen, s.Password) {
				r.seen = append(r.seen, s.Password)
			}
		}
	}
}

// versionIDs lists every version of the secret, labelled or not.
func (r *crashRun) versionIDs() []string {
	r.t.Helper()
	var ids []string
	p := secretsmanager.NewListSecretVersionIdsPaginator(r.h.Em.SM, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(r.arn), IncludeDeprecated: aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			r.t.Fatalf("list versions: %v", err)
		}
		for _, v := range out.Versions {
			ids = append(ids, aws.ToString(v.VersionId))
		}
	}
	return ids
}

// value reads version id; ok is false for a version without a value (the
// placeholder of a rotation whose createSecret has not stored yet).
func (r *crashRun) value(id string) (string, bool) {
	out, err := r.h.Em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(r.arn), VersionId: aws.String(id),
	})
	if err != nil || out.SecretString == nil {
		return "", false
	}
	return *out.SecretString, true
}

// stage returns the parsed version that carries stage, if any has a value.
func (r *crashRun) stage(stage string) (*dbsecret.Secret, bool) {
	out, err := r.h.Em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(r.arn), VersionStage: aws.String(stage),
	})
	if err != nil || out.SecretString == nil {
		return nil, false
	}
	s, err := dbsecret.Parse(*out.SecretString, dbsecret.Defaults{})
	if err != nil {
		r.t.Fatalf("%s: %v", stage, err)
	}
	return s, true
}

// invariant asserts that AWSCURRENT or AWSPENDING logs in: a client that
// reads both is never locked out.
func (r *crashRun) invariant(when string) {
	r.t.Helper()
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING"} {
		if s, ok := r.stage(stage); ok && r.spec.Login(r.t, s) == nil {
			return
		}
	}
	if r.gap {
		r.someVersionLogsIn(when)
		return
	}
	r.t.Fatalf("%s: neither AWSCURRENT nor AWSPENDING logs in", when)
}

// someVersionLogsIn asserts that some stored version, labelled or not,
// logs in, and returns its id.
func (r *crashRun) someVersionLogsIn(when string) string {
	r.t.Helper()
	for _, id := range r.versionIDs() {
		if v, ok := r.value(id); ok {
			if s, err := dbsecret.Parse(v, dbsecret.Defaults{}); err == nil && r.spec.Login(r.t, s) == nil {
				return id
			}
		}
	}
	r.t.Fatalf("%s: no stored version logs in", when)
	return ""
}

// step runs one step of token in e (a fresh engine when nil, as a new
// Lambda instance would) and then checks the invariant.
func (r *crashRun) step(e *rotation.Engine, step, token string) {
	r.t.Helper()
	if e == nil {
		e = r.h.NewEngine(r.h.Em.SM)
	}
	if err := r.h.Step(e, step, r.arn, token); err != nil {
		r.t.Fatalf("%s: %v", step, err)
	}
	r.remember()
	r.invariant("after " + step)
}

// close does what Secrets Manager does after a successful finishSecret.
func (r *crashRun) close(token string) {
	r.t.Helper()
	if err := r.h.Em.CloseRotation(context.Background(), r.arn, token); err != nil {
		r.t.Fatal(err)
	}
}

// removePending is what an operator does by hand to let a new rotation
// start after one was abandoned: take AWSPENDING off its version. It first
// labels the version ABANDONED: on AWS a version whose last label goes is
// kept (deprecated; none younger than 24 hours is removed), but LocalStack
// deletes it at once, and with it the one password that may still work.
func (r *crashRun) removePending(token string) {
	r.t.Helper()
	_, err := r.h.Em.SM.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.arn), VersionStage: aws.String("ABANDONED"), MoveToVersionId: aws.String(token),
	})
	if err != nil {
		r.t.Fatalf("label %s ABANDONED: %v", token, err)
	}
	_, err = r.h.Em.SM.UpdateSecretVersionStage(context.Background(), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.arn), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(token),
	})
	if err != nil {
		r.t.Fatalf("remove AWSPENDING from %s: %v", token, err)
	}
}

// rotated asserts the end state of a finished rotation of token: token is
// AWSCURRENT and logs in, and, alternating, AWSPREVIOUS logs in as well.
func (r *crashRun) rotated(token, when string) {
	r.t.Helper()
	stages, err := r.h.Em.Stages(context.Background(), r.arn)
	if err != nil {
		r.t.Fatal(err)
	}
	if !slices.Contains(stages[token], "AWSCURRENT") {
		r.t.Fatalf("%s: version %s has stages %v, want AWSCURRENT", when, token, stages[token])
	}
	cur, _ := r.stage("AWSCURRENT")
	if err := r.spec.Login(r.t, cur); err != nil {
		r.t.Fatalf("%s: AWSCURRENT does not log in: %v", when, err)
	}
	if r.spec.alternating(cur) || r.spec.addsPasswords(cur) {
		prev, ok := r.stage("AWSPREVIOUS")
		if !ok {
			r.t.Fatalf("%s: no AWSPREVIOUS", when)
		}
		if err := r.spec.Login(r.t, prev); err != nil {
			r.t.Fatalf("%s: AWSPREVIOUS does not log in: %v", when, err)
		}
		if r.spec.addsPasswords(cur) {
			r.olderPasswordsRemoved(cur, prev, when)
		}
	}
}

// olderPasswordsRemoved asserts that of every password the secret ever
// held, only those of cur and prev still log in as cur's user.
func (r *crashRun) olderPasswordsRemoved(cur, prev *dbsecret.Secret, when string) {
	r.t.Helper()
	r.remember()
	for _, p := range r.seen {
		if p == cur.Password || p == prev.Password {
			continue
		}
		old := *cur
		old.Password = p
		if err := r.spec.Login(r.t, &old); !errors.Is(err, dbsecret.ErrCannotLogIn) {
			r.t.Fatalf("%s: a password older than AWSPREVIOUS still logs in (or the login failed otherwise: %v)", when, err)
		}
	}
}

// rotate runs one whole rotation with a new token and checks its end.
func (r *crashRun) rotate(when string) {
	r.t.Helper()
	token := r.h.Open(r.arn)
	for _, s := range localrun.Steps {
		r.step(nil, s, token)
	}
	r.close(token)
	r.rotated(token, when)
}

func (r *crashRun) noSecretInLogs() {
	r.t.Helper()
	r.remember()
	r.h.AssertNoSecretInLogs(r.seen...)
}

// Crashes runs the crash scenarios of a rotation, checking after every step
// that AWSCURRENT or AWSPENDING logs in:
//   - a setSecret that changed the password and died before it returned,
//     retried by Secrets Manager;
//   - a finishSecret that never ran, the rotation then retried with the
//     same token (on AWS a second RotateSecret is refused while AWSPENDING
//     is open: Secrets Manager retries the open rotation);
//   - a rotation abandoned after createSecret whose AWSPENDING an operator
//     removed, then a new rotation.
//
// Every step runs in a fresh engine, as in a new Lambda instance.
func Crashes(t *testing.T, spec CrashSpec) {
	r := newCrashRun(t, spec)
	token := r.h.Open(r.arn)
	r.step(nil, "createSecret", token)
	r.step(nil, "setSecret", token) // changed the password, then died before returning
	r.step(nil, "setSecret", token) // the retry: nothing left to do
	r.step(nil, "testSecret", token)
	// finishSecret never ran: the invariant holds as things stand, and the
	// retried rotation completes.
	r.invariant("finishSecret never ran")
	for _, s := range localrun.Steps[1:] {
		r.step(nil, s, token)
	}
	r.close(token)
	r.rotated(token, "retried rotation")

	// Abandoned after createSecret: nothing was set, AWSCURRENT still logs in.
	token = r.h.Open(r.arn)
	r.step(nil, "createSecret", token)
	r.removePending(token)
	r.invariant("abandoned after createSecret")
	r.rotate("rotation after one abandoned after createSecret")
	r.rotate("one more rotation")
	r.noSecretInLogs()
}

// AbandonedAfterSetSecret: a rotation abandoned after its setSecret changed
// the database, whose AWSPENDING an operator then removed by hand, leaving
// the one password a single-user database accepts on a version without a
// label. The next rotation must find it (alternating users never needs to:
// the active user was not touched; nor does a user with several passwords,
// whose AWSCURRENT still logs in) and succeed, and with several passwords
// its finishSecret removes the abandoned one.
func AbandonedAfterSetSecret(t *testing.T, spec CrashSpec) {
	r := newCrashRun(t, spec)
	token := r.h.Open(r.arn)
	r.step(nil, "createSecret", token)
	r.step(nil, "setSecret", token)
	r.removePending(token)
	r.gap = true
	id := r.someVersionLogsIn("abandoned after setSecret")
	cur, _ := r.stage("AWSCURRENT")
	// Alternating users, or a user with several passwords, never lost the
	// one AWSCURRENT holds: the version found may be any.
	recovers := !spec.alternating(cur) && !spec.addsPasswords(cur)
	if recovers && id != token {
		t.Fatalf("abandoned after setSecret: version %s logs in, want the abandoned %s", id, token)
	}
	next := r.h.Open(r.arn)
	r.step(nil, "createSecret", next)
	r.step(nil, "setSecret", next)
	r.gap = false
	r.step(nil, "testSecret", next)
	r.step(nil, "finishSecret", next)
	r.close(next)
	r.rotated(next, "rotation after one abandoned after setSecret")
	if recovers && !strings.Contains(r.h.Logs(), `"other_version_id":"`+token+`"`) {
		t.Fatalf("the log does not say which version logged in:\n%s", r.h.Logs())
	}
	r.rotate("one more rotation")
	r.noSecretInLogs()
}

// putOther stores value as a new version labelled only with label, which
// is not a label of the rotation protocol; it returns the version id.
func (r *crashRun) putOther(value, label string) string {
	r.t.Helper()
	id := localrun.NewToken()
	_, err := r.h.Em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(r.arn), ClientRequestToken: aws.String(id), SecretString: aws.String(value),
		VersionStages: []string{label},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

// OtherVersionsChecked: the versions a single-user setSecret falls back on
// must name the same user (a version naming another user whose password
// works is never used to log in), and only the newest few are tried.
func OtherVersionsChecked(t *testing.T, spec CrashSpec) {
	r := newCrashRun(t, spec)
	cur, _ := r.stage("AWSCURRENT")
	if spec.alternating(cur) {
		t.Fatal("OtherVersionsChecked needs a single-user secret")
	}
	// Neither AWSCURRENT nor (absent) AWSPREVIOUS logs in any more.
	working := spec.password()
	spec.SetPassword(t, cur.Username, working)
	r.gap = true

	// The user's working password, but older than the five newest versions
	// the fallback tries.
	old, err := cur.With(cur.Username, working)
	if err != nil {
		t.Fatal(err)
	}
	r.putOther(old, "TEST-OLD")
	time.Sleep(1100 * time.Millisecond) // moto keeps creation dates in whole seconds
	// Among the five newest: another user's working credentials, and four
	// wrong passwords of the user.
	other := newCrashRun(t, spec)
	ov, _ := other.stage("AWSCURRENT")
	value, err := ov.With(ov.Username, ov.Password)
	if err != nil {
		t.Fatal(err)
	}
	r.putOther(value, "TEST-OTHER-USER")
	for i := 0; i < 4; i++ {
		wrong, err := cur.With(cur.Username, spec.password())
		if err != nil {
			t.Fatal(err)
		}
		r.putOther(wrong, fmt.Sprint("TEST-WRONG-", i))
	}
	token := r.h.Open(r.arn)
	r.step(nil, "createSecret", token)
	err = r.h.Step(nil, "setSecret", r.arn, token)
	if err == nil || !strings.Contains(err.Error(), "nor with 4 other versions") || !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("want a refusal after trying 4 other versions, got %v", err)
	}
	if !strings.Contains(r.h.Logs(), "names another user or server: skipped") {
		t.Fatalf("the version of another user was not reported skipped:\n%s", r.h.Logs())
	}
	if err := spec.Login(t, ov); err != nil {
		t.Fatalf("the other user's password changed: %v", err)
	}
	if err := spec.Login(t, &dbsecret.Secret{Username: cur.Username, Password: working}); err != nil {
		t.Fatalf("the user's password changed: %v", err)
	}
	r.remember()
	r.seen = append(r.seen, working, ov.Password)
	r.noSecretInLogs()
}

// CrashAtEveryCall kills each step after each of its AWS calls in turn (the
// engine's Secrets Manager calls and the target's own count together, and
// with NewCrashingTarget its other external calls too), and
// once more after the step completed but before it returned; then checks
// the invariant, reruns the step and the rest in a fresh engine, and checks
// that the rotation finished. All the rotations run on one secret, back to
// back, so an alternating secret goes both ways (each way after every one
// of its calls with EachDirection).
func CrashAtEveryCall(t *testing.T, spec CrashSpec) {
	r := newCrashRun(t, spec)
	cur, _ := r.stage("AWSCURRENT")
	directions := 1
	if spec.EachDirection && spec.alternating(cur) {
		directions = 2
	}
	for si, step := range localrun.Steps {
		for k := 0; ; k++ {
			if k > 30 {
				t.Fatalf("%s: still crashing after %d calls", step, k)
			}
			// Each rotation goes the other way, so with two directions
			// each of them is crashed after its k-th call.
			completed := 0
			for range directions {
				if r.crashAt(spec, si, step, k) {
					completed++
				}
			}
			if completed == directions {
				break
			}
		}
	}
	r.noSecretInLogs()
}

// crashAt runs one rotation whose step si dies after its k-th call, then
// checks the invariant, reruns the step and the rest in a fresh engine and
// checks that the rotation finished. It reports whether the step made
// fewer than k calls (it completed, and died before returning).
func (r *crashRun) crashAt(spec CrashSpec, si int, step string, k int) bool {
	t := r.t
	t.Helper()
	token := r.h.Open(r.arn)
	for _, prior := range localrun.Steps[:si] {
		r.step(nil, prior, token)
	}
	crasher := &testbed.Crasher{K: k}
	cfg := crasher.Config(testbed.AWSConfig(t))
	target := spec.NewTarget
	if spec.NewCrashingTarget != nil {
		target = func(cfg aws.Config) rotation.Target { return spec.NewCrashingTarget(cfg, crasher) }
	}
	crashing := rotation.New(secretsmanager.NewFromConfig(cfg), target(cfg), r.h.options())
	err := r.h.Step(crashing, step, r.arn, token)
	completed := err == nil
	if err != nil && !errors.Is(err, testbed.ErrCrash) {
		t.Fatalf("%s crashed after %d calls %v: unexpected error %v", step, k, crasher.Ops, err)
	}
	when := fmt.Sprintf("%s crashed after %d calls %v", step, k, crasher.Ops)
	if completed {
		// The step made fewer than k calls: it ran to the end, and the
		// function dies before the result reaches Secrets Manager, which
		// invokes the step again.
		when = fmt.Sprintf("%s completed (%d calls) and died before returning", step, len(crasher.Ops))
	}
	r.remember()
	r.invariant(when)
	for _, rest := range localrun.Steps[si:] {
		r.step(nil, rest, token)
	}
	r.close(token)
	r.rotated(token, when)
	t.Logf("%s: recovered", when)
	return completed
}
