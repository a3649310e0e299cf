package iamkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// ---- unit tests ----

func TestParseSecret(t *testing.T) {
	s, err := parseSecret(`{"userName":"app","accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"s3cr3t","note":1.50}`)
	if err != nil {
		t.Fatal(err)
	}
	if s.UserName != "app" || s.AccessKeyID != "AKIAAAAAAAAAAAAAAAAA" {
		t.Fatalf("parsed %+v", s)
	}
	v, err := s.with("AKIABBBBBBBBBBBBBBBB", "n3w")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		t.Fatal(err)
	}
	if m["accessKeyId"] != "AKIABBBBBBBBBBBBBBBB" || m["secretAccessKey"] != "n3w" || m["userName"] != "app" || m["note"] != 1.5 {
		t.Errorf("with: %v", m)
	}
	if _, err := parseSecret(`{"userName":"app"}`); err != nil {
		t.Errorf("a secret with the user name alone is a valid first secret: %v", err)
	}
}

func TestParseSecretErrors(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`not json s3cr3t`, "not a JSON object"},
		{`["s3cr3t"]`, "not a JSON object"},
		{`{"accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"s3cr3t"}`, `no "userName"`},
		{`{"userName":"bad name","secretAccessKey":"s3cr3t"}`, "not a valid IAM user name"},
		{`{"userName":"app","accessKeyId":"s3cr3t/x","secretAccessKey":"s3cr3t"}`, "not an access key id"},
		{`{"userName":"app","accessKeyId":"AKIAAAAAAAAAAAAAAAAA"}`, "without the other"},
		{`{"userName":"app","secretAccessKey":7}`, "not a string"},
	} {
		_, err := parseSecret(c.value)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.value, err, c.want)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: error quotes the secret: %v", c.value, err)
		}
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := ConfigFromEnv(env(nil))
	if err != nil || c.DeactivatePrevious || c.TestTimeout != defaultTestTimeout || c.UserPath != "/secrets-rotation/" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = ConfigFromEnv(env(map[string]string{"DEACTIVATE_PREVIOUS_KEY": "true", "TEST_TIMEOUT": "5s", "IAM_USER_PATH": "/apps/team-a/"}))
	if err != nil || !c.DeactivatePrevious || c.TestTimeout != 5*time.Second || c.UserPath != "/apps/team-a/" {
		t.Fatalf("set: %+v %v", c, err)
	}
	c, err = ConfigFromEnv(env(map[string]string{"IAM_USER_PATH": "/", "IAM_ALLOW_ALL_USERS": "true"}))
	if err != nil || c.UserPath != "/" {
		t.Fatalf("every user, opted in: %+v %v", c, err)
	}
	for k, v := range map[string]string{"DEACTIVATE_PREVIOUS_KEY": "maybe", "TEST_TIMEOUT": "-1s", "IAM_USER_PATH": "apps/", "IAM_ALLOW_ALL_USERS": "yes please"} {
		if _, err := ConfigFromEnv(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: error %v does not name the variable", k, v, err)
		}
	}
	for _, bad := range []string{"/apps", "//", "/a//b/", "/a b/"} {
		if _, err := ConfigFromEnv(env(map[string]string{"IAM_USER_PATH": bad})); err == nil {
			t.Errorf("IAM_USER_PATH=%q accepted", bad)
		}
	}
}

// ---- integration tests against the emulator ----

type fixture struct {
	t    *testing.T
	em   *localrun.Emulator
	cfg  aws.Config
	iam  *iam.Client
	logs *testbed.LogBuffer
	tc   Config
}

func newFixture(t *testing.T) *fixture {
	cfg := testbed.AWSConfig(t)
	return &fixture{t: t, em: localrun.NewEmulator(cfg), cfg: cfg, iam: iam.NewFromConfig(cfg), logs: &testbed.LogBuffer{},
		tc: Config{TestTimeout: 3 * time.Second, UserPath: DefaultUserPath}}
}

func (f *fixture) engine(iamOpts ...func(*iam.Options)) *rotation.Engine {
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return rotation.New(f.em.SM, New(f.tc, f.cfg, iamOpts...), rotation.Options{TargetType: "iamkey", Function: "test", Logger: log})
}

// user creates an IAM user under the function's default IAM_USER_PATH,
// deleted with its keys when the test ends.
func (f *fixture) user() string {
	f.t.Helper()
	return f.userAt(DefaultUserPath)
}

// userAt creates an IAM user with the IAM path, deleted with its keys when
// the test ends.
func (f *fixture) userAt(path string) string {
	f.t.Helper()
	name := "rot-" + localrun.NewToken()[:8]
	if _, err := f.iam.CreateUser(context.Background(), &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(path)}); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		ctx := context.Background()
		out, _ := f.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(name)})
		if out != nil {
			for _, k := range out.AccessKeyMetadata {
				_, _ = f.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(name), AccessKeyId: k.AccessKeyId})
			}
		}
		_, _ = f.iam.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(name)})
	})
	return name
}

func (f *fixture) newKey(user string) (id, secretKey string) {
	f.t.Helper()
	out, err := f.iam.CreateAccessKey(context.Background(), &iam.CreateAccessKeyInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	return aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey)
}

// keys returns the user's keys as id -> status.
func (f *fixture) keys(user string) map[string]string {
	f.t.Helper()
	out, err := f.iam.ListAccessKeys(context.Background(), &iam.ListAccessKeysInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]string{}
	for _, k := range out.AccessKeyMetadata {
		m[aws.ToString(k.AccessKeyId)] = string(k.Status)
	}
	return m
}

// secretWithKey makes a user with one key and a secret that holds it.
func (f *fixture) secretWithKey() (arn, user, keyID, secretKey string) {
	f.t.Helper()
	user = f.user()
	keyID, secretKey = f.newKey(user)
	v, _ := json.Marshal(map[string]string{"userName": user, "accessKeyId": keyID, "secretAccessKey": secretKey})
	return f.secretFor(user, string(v)), user, keyID, secretKey
}

// secretFor creates a secret with value and binds user to it with the
// BindingTag, as the deployer does.
func (f *fixture) secretFor(user, value string) string {
	f.t.Helper()
	arn := testbed.CreateSecret(f.t, f.em, value)
	f.bind(user, arn)
	return arn
}

// bind tags user as managed by the secret whose ARN or name is value.
func (f *fixture) bind(user, value string) {
	f.t.Helper()
	if _, err := f.iam.TagUser(context.Background(), &iam.TagUserInput{UserName: aws.String(user),
		Tags: []iamtypes.Tag{{Key: aws.String(BindingTag), Value: aws.String(value)}}}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) invoke(e *rotation.Engine, step, arn, token string) error {
	return e.Handle(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token})
}

func (f *fixture) rotate(arn string) string {
	f.t.Helper()
	res, err := f.em.Rotate(context.Background(), arn, localrun.InvokerFunc(f.engine().Handle), localrun.Options{Attempts: 1})
	if err != nil {
		f.t.Fatalf("rotate: %v", err)
	}
	return res.Token
}

func keyAt(t *testing.T, em *localrun.Emulator, arn, stage string) secret {
	t.Helper()
	s, err := parseSecret(testbed.ValueAt(t, em, arn, stage))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRotateTwice(t *testing.T) {
	f := newFixture(t)
	arn, user, k0, _ := f.secretWithKey()

	f.rotate(arn)
	k1 := keyAt(t, f.em, arn, "AWSCURRENT").AccessKeyID
	if k1 == k0 || keyAt(t, f.em, arn, "AWSPREVIOUS").AccessKeyID != k0 {
		t.Fatalf("after rotation 1: current %s previous %s, old %s", k1, keyAt(t, f.em, arn, "AWSPREVIOUS").AccessKeyID, k0)
	}
	if got := f.keys(user); len(got) != 2 || got[k0] != "Active" || got[k1] != "Active" {
		t.Fatalf("after rotation 1 the user has keys %v, want %s and %s both active (grace period)", got, k0, k1)
	}

	f.rotate(arn)
	k2 := keyAt(t, f.em, arn, "AWSCURRENT").AccessKeyID
	if got := f.keys(user); len(got) != 2 || got[k1] != "Active" || got[k2] != "Active" {
		t.Fatalf("after rotation 2 the user has keys %v, want %s (previous) and %s (current): %s deleted", got, k1, k2, k0)
	}
	if keyAt(t, f.em, arn, "AWSPREVIOUS").AccessKeyID != k1 {
		t.Errorf("AWSPREVIOUS does not hold %s", k1)
	}
}

func TestFirstRotationFromUserNameOnly(t *testing.T) {
	f := newFixture(t)
	user := f.user()
	arn := f.secretFor(user, `{"userName":"`+user+`","owner":"team-a"}`)
	f.rotate(arn)
	cur := keyAt(t, f.em, arn, "AWSCURRENT")
	if got := f.keys(user); len(got) != 1 || got[cur.AccessKeyID] != "Active" {
		t.Fatalf("user keys %v, want only %s", got, cur.AccessKeyID)
	}
	if !strings.Contains(testbed.ValueAt(t, f.em, arn, "AWSCURRENT"), `"owner":"team-a"`) {
		t.Errorf("other fields of the secret were not kept")
	}
}

func TestEachStepTwice(t *testing.T) {
	f := newFixture(t)
	arn, user, k0, _ := f.secretWithKey()
	f.rotate(arn) // so that the second rotation has a previous key to retire
	k1 := keyAt(t, f.em, arn, "AWSCURRENT").AccessKeyID
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	for _, step := range localrun.Steps {
		for i := range 2 {
			if err := f.invoke(f.engine(), step, arn, token); err != nil {
				t.Fatalf("%s run %d: %v", step, i+1, err)
			}
		}
	}
	k2 := keyAt(t, f.em, arn, "AWSCURRENT").AccessKeyID
	got := f.keys(user)
	if len(got) != 2 || got[k1] == "" || got[k2] == "" || got[k0] != "" {
		t.Fatalf("user keys %v, want %s and %s", got, k1, k2)
	}
}

// TestCrashAtEveryCall kills each step after each of its AWS calls (the
// engine's Secrets Manager calls, IAM and STS, counted together by one
// testbed.Crasher), reruns the step and the rest of the rotation in a fresh
// engine, and checks that it converges without a leaked key: the user has
// at most two keys, each held by AWSCURRENT or AWSPREVIOUS; AWSCURRENT's
// key is active and signs as the user; no intent tag is left. Right after
// each crash the key of AWSCURRENT still works. With
// DEACTIVATE_PREVIOUS_KEY the finish hook's calls are crash points too.
func TestCrashAtEveryCall(t *testing.T) {
	for _, deactivate := range []bool{false, true} {
		name := "previous key stays active"
		if deactivate {
			name = "DEACTIVATE_PREVIOUS_KEY"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.tc.DeactivatePrevious = deactivate
			// Crash points inside the retry loops of setSecret and
			// testSecret give up after TestTimeout.
			f.tc.TestTimeout = time.Second
			ctx := context.Background()
			// One secret for every crash point: each rotation starts from
			// where the one before converged.
			arn, user, _, _ := f.secretWithKey()
			f.rotate(arn)
			sawCreateKey := false
			for si, step := range localrun.Steps {
				for k := 0; ; k++ {
					old := keyAt(t, f.em, arn, "AWSCURRENT")
					oldID := f.versionAt(arn, "AWSCURRENT")
					token := localrun.NewToken()
					if _, err := f.em.OpenRotation(ctx, arn, token); err != nil {
						t.Fatal(err)
					}
					eng := f.engine()
					for _, prior := range localrun.Steps[:si] {
						if err := f.invoke(eng, prior, arn, token); err != nil {
							t.Fatalf("%s: %v", prior, err)
						}
					}
					c := &testbed.Crasher{K: k}
					err := f.invoke(f.engineWith(c.Config(f.cfg)), step, arn, token)
					if err == nil {
						if k == 0 {
							t.Fatalf("%s made no AWS call", step)
						}
						// Every crash point of the step is done: finish
						// this rotation for the next step's crash points.
						for _, rest := range localrun.Steps[si+1:] {
							if err := f.invoke(f.engine(), rest, arn, token); err != nil {
								t.Fatal(err)
							}
						}
						if err := f.em.CloseRotation(ctx, arn, token); err != nil {
							t.Fatal(err)
						}
						break
					}
					if !errors.Is(err, testbed.ErrCrash) {
						t.Fatalf("%s crashed after %d calls: unexpected error %v", step, k, err)
					}
					last := "nothing"
					if len(c.Ops) > 0 {
						last = c.Ops[len(c.Ops)-1]
					}
					sawCreateKey = sawCreateKey || (step == rotation.StepCreate && last == "CreateAccessKey")
					// Zero downtime: whichever version is AWSCURRENT now
					// (the old one, or the new one after the label moved)
					// holds a working key.
					f.assertWorks(user, keyAt(t, f.em, arn, "AWSCURRENT"), fmt.Sprintf("%s crashed after %s (call %d): AWSCURRENT", step, last, k))
					for _, rest := range localrun.Steps[si:] {
						if err := f.invoke(f.engine(), rest, arn, token); err != nil {
							t.Fatalf("%s crashed after %s (call %d); rerun of %s: %v", step, last, k, rest, err)
						}
					}
					if err := f.em.CloseRotation(ctx, arn, token); err != nil {
						t.Fatal(err)
					}
					where := fmt.Sprintf("%s crashed after %s (call %d), rerun", step, last, k)
					st, _ := f.em.Stages(ctx, arn)
					if !slices.Contains(st[token], "AWSCURRENT") || !slices.Contains(st[oldID], "AWSPREVIOUS") {
						t.Fatalf("%s: stages %v", where, st)
					}
					cur, prev := keyAt(t, f.em, arn, "AWSCURRENT"), keyAt(t, f.em, arn, "AWSPREVIOUS")
					if prev.AccessKeyID != old.AccessKeyID || cur.AccessKeyID == old.AccessKeyID {
						t.Fatalf("%s: current %s previous %s, old %s", where, cur.AccessKeyID, prev.AccessKeyID, old.AccessKeyID)
					}
					keys := f.keys(user)
					if len(keys) > 2 {
						t.Fatalf("%s: user has %d keys %v", where, len(keys), keys)
					}
					for id := range keys {
						if id != cur.AccessKeyID && id != prev.AccessKeyID {
							t.Fatalf("%s: key %s is held by no version (leaked); keys %v", where, id, keys)
						}
					}
					wantPrev := "Active"
					if deactivate {
						wantPrev = "Inactive"
					}
					if keys[prev.AccessKeyID] != wantPrev {
						t.Fatalf("%s: previous key %s is %q, want %s", where, prev.AccessKeyID, keys[prev.AccessKeyID], wantPrev)
					}
					f.assertWorks(user, cur, where+": AWSCURRENT")
					if tags := f.intentTags(user); len(tags) > 0 {
						t.Fatalf("%s: intent tags left on the user: %v", where, tags)
					}
					t.Logf("%s: crash after call %d (%s) recovered", step, k, last)
				}
			}
			if !sawCreateKey {
				t.Fatal("no crash point of createSecret came right after CreateAccessKey")
			}
		})
	}
}

// engineWith makes an engine whose every AWS call (the engine's, IAM, STS)
// goes through clients made from awsCfg.
func (f *fixture) engineWith(awsCfg aws.Config) *rotation.Engine {
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return rotation.New(secretsmanager.NewFromConfig(awsCfg), New(f.tc, awsCfg), rotation.Options{TargetType: "iamkey", Function: "test", Logger: log})
}

// versionAt returns the id of the version of arn that carries stage.
func (f *fixture) versionAt(arn, stage string) string {
	f.t.Helper()
	st, err := f.em.Stages(context.Background(), arn)
	if err != nil {
		f.t.Fatal(err)
	}
	for id, labels := range st {
		if slices.Contains(labels, stage) {
			return id
		}
	}
	f.t.Fatalf("%s has no %s version: %v", arn, stage, st)
	return ""
}

// assertWorks checks that s holds an active key of user that signs
// requests as the user.
func (f *fixture) assertWorks(user string, s secret, what string) {
	f.t.Helper()
	if got := f.keys(user)[s.AccessKeyID]; got != "Active" {
		f.t.Fatalf("%s: key %s is %q, not active", what, s.AccessKeyID, got)
	}
	u, err := f.iam.GetUser(context.Background(), &iam.GetUserInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := New(Config{TestTimeout: time.Second}, f.cfg).checkIdentity(context.Background(), s.AccessKeyID, s.SecretAccessKey, aws.ToString(u.User.Arn)); err != nil {
		f.t.Fatalf("%s: key %s does not sign as %s: %v", what, s.AccessKeyID, user, err)
	}
}

// intentTags returns the crash-recovery intent tags on user.
func (f *fixture) intentTags(user string) []string {
	f.t.Helper()
	out, err := f.iam.ListUserTags(context.Background(), &iam.ListUserTagsInput{UserName: aws.String(user)})
	if err != nil {
		f.t.Fatal(err)
	}
	var tags []string
	for _, tag := range out.Tags {
		if strings.HasPrefix(aws.ToString(tag.Key), intentTagPrefix) {
			tags = append(tags, aws.ToString(tag.Key)+"="+aws.ToString(tag.Value))
		}
	}
	return tags
}

// unchanged runs one createSecret that must fail naming want, and checks
// that neither the user's keys nor the secret changed.
func (f *fixture) refusedCreate(arn, user, want string) {
	f.t.Helper()
	keysBefore := f.keys(user)
	// A refused rotation stays open, as on AWS, which refuses a second
	// RotateSecret while it is: retry the open one, as Secrets Manager does.
	token := ""
	stagesBefore, _ := f.em.Stages(context.Background(), arn)
	for id, st := range stagesBefore {
		if slices.Contains(st, "AWSPENDING") && !slices.Contains(st, "AWSCURRENT") {
			token = id
		}
	}
	if token == "" {
		token = localrun.NewToken()
		if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
			f.t.Fatal(err)
		}
		stagesBefore, _ = f.em.Stages(context.Background(), arn)
	}
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	if err == nil || !strings.Contains(err.Error(), want) {
		f.t.Fatalf("createSecret error %v, want one naming %q", err, want)
	}
	if got := f.keys(user); fmt.Sprint(got) != fmt.Sprint(keysBefore) {
		f.t.Errorf("keys changed: %v -> %v", keysBefore, got)
	}
	if got, _ := f.em.Stages(context.Background(), arn); fmt.Sprint(got) != fmt.Sprint(stagesBefore) {
		f.t.Errorf("stages changed: %v -> %v", stagesBefore, got)
	}
	if _, err := f.em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token)}); err == nil {
		f.t.Errorf("a pending value was stored")
	}
}

func TestTwoKeyLimitRefusesForeignKey(t *testing.T) {
	f := newFixture(t)
	arn, user, _, _ := f.secretWithKey()
	foreign, _ := f.newKey(user) // made by someone else: not the secret's
	f.refusedCreate(arn, user, foreign)
}

func TestTwoForeignKeysRefused(t *testing.T) {
	f := newFixture(t)
	user := f.user()
	a, _ := f.newKey(user)
	b, _ := f.newKey(user)
	arn := f.secretFor(user, `{"userName":"`+user+`"}`)
	f.refusedCreate(arn, user, a)
	f.refusedCreate(arn, user, b)
}

func TestUserDoesNotExist(t *testing.T) {
	f := newFixture(t)
	arn := testbed.CreateSecret(t, f.em, `{"userName":"no-such-user-`+localrun.NewToken()[:8]+`"}`)
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	err := f.invoke(f.engine(), rotation.StepCreate, arn, token)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "no-such-user-") {
		t.Fatalf("error %v does not say that the user does not exist", err)
	}
}

func TestDeactivatePrevious(t *testing.T) {
	f := newFixture(t)
	f.tc.DeactivatePrevious = true
	arn, user, k0, _ := f.secretWithKey()
	f.rotate(arn)
	k1 := keyAt(t, f.em, arn, "AWSCURRENT").AccessKeyID
	if got := f.keys(user); got[k0] != "Inactive" || got[k1] != "Active" {
		t.Fatalf("keys %v, want %s inactive and %s active", got, k0, k1)
	}
	f.rotate(arn) // retires the inactive key to make room
	if got := f.keys(user); len(got) != 2 || got[k0] != "" || got[k1] != "Inactive" {
		t.Fatalf("keys after rotation 2: %v", got)
	}
}

// TestTestSecretRejectsADeletedKey: the check is not one that always passes.
func TestTestSecretRejectsADeletedKey(t *testing.T) {
	f := newFixture(t)
	arn, user, _, _ := f.secretWithKey()
	token := localrun.NewToken()
	if _, err := f.em.OpenRotation(context.Background(), arn, token); err != nil {
		t.Fatal(err)
	}
	for _, step := range localrun.Steps[:2] {
		if err := f.invoke(f.engine(), step, arn, token); err != nil {
			t.Fatal(err)
		}
	}
	pend, err := parseSecret(testbed.ValueOf(t, f.em, arn, token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.iam.DeleteAccessKey(context.Background(), &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(pend.AccessKeyID)}); err != nil {
		t.Fatal(err)
	}
	err = f.invoke(f.engine(), rotation.StepTest, arn, token)
	if err == nil || !strings.Contains(err.Error(), pend.AccessKeyID) {
		t.Fatalf("testSecret with a deleted key: %v", err)
	}
}

// TestSTSIdentityCheck runs the STS check of Test alone: a live key gives
// the user's ARN; a deleted key must not (the emulator then answers with its
// default identity, AWS with InvalidClientTokenId), and the check fails.
func TestSTSIdentityCheck(t *testing.T) {
	f := newFixture(t)
	user := f.user()
	id, sk := f.newKey(user)
	u, err := f.iam.GetUser(context.Background(), &iam.GetUserInput{UserName: aws.String(user)})
	if err != nil {
		t.Fatal(err)
	}
	want := aws.ToString(u.User.Arn)
	tg := New(Config{TestTimeout: 2 * time.Second}, f.cfg)
	if _, err := tg.checkIdentity(context.Background(), id, sk, want); err != nil {
		t.Fatalf("live key: %v", err)
	}
	if _, err := f.iam.DeleteAccessKey(context.Background(), &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.checkIdentity(context.Background(), id, sk, want); err == nil {
		t.Fatal("deleted key passed the identity check")
	} else if strings.Contains(err.Error(), sk) {
		t.Fatal("error contains the secret key")
	}
}

func TestLogsCarryNoSecretKey(t *testing.T) {
	f := newFixture(t)
	f.tc.DeactivatePrevious = true
	arn, _, _, sk0 := f.secretWithKey()
	f.rotate(arn)
	sk1 := keyAt(t, f.em, arn, "AWSCURRENT").SecretAccessKey
	f.rotate(arn)
	sk2 := keyAt(t, f.em, arn, "AWSCURRENT").SecretAccessKey
	logs := f.logs.String()
	if !strings.Contains(logs, `"access key created"`) {
		t.Fatalf("no target log lines captured: %s", logs)
	}
	for i, sk := range []string{sk0, sk1, sk2} {
		if sk == "" || strings.Contains(logs, sk) {
			t.Errorf("log output contains the secret access key of version %d (or it is empty)", i)
		}
	}
	if strings.Contains(logs, "secretAccessKey") {
		t.Errorf("log output mentions a secretAccessKey field")
	}
}

// TestEndToEndUnderRIE builds functions/iamkey, runs it under the runtime
// interface emulator and rotates a secret twice through the local runner.
func TestEndToEndUnderRIE(t *testing.T) {
	f := newFixture(t)
	rieBin := testbed.RIEBinary(t)
	bootstrap := testbed.BuildFunction(t, "iamkey")
	arn, user, k0, sk0 := f.secretWithKey()
	var out testbed.LogBuffer
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary: rieBin, Bootstrap: bootstrap, Output: &out,
		Env: []string{"AWS_LAMBDA_FUNCTION_NAME=iamkey", "TEST_TIMEOUT=10s", "AWS_REGION=" + f.cfg.Region},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	for i := range 2 {
		start := time.Now()
		res, err := f.em.Rotate(context.Background(), arn, rie, localrun.Options{Attempts: 1})
		if err != nil {
			t.Fatalf("rotation %d: %v\n%s", i+1, err, out.String())
		}
		t.Logf("rotation %d under RIE: %s", i+1, time.Since(start))
		if !slices.Contains(res.StagesAfter[res.Token], "AWSCURRENT") {
			t.Fatalf("rotation %d: stages %v", i+1, res.StagesAfter)
		}
	}
	cur := keyAt(t, f.em, arn, "AWSCURRENT")
	prev := keyAt(t, f.em, arn, "AWSPREVIOUS")
	if got := f.keys(user); len(got) != 2 || got[cur.AccessKeyID] != "Active" || got[prev.AccessKeyID] != "Active" || got[k0] != "" {
		t.Fatalf("user keys %v, want current %s and previous %s", got, cur.AccessKeyID, prev.AccessKeyID)
	}
	logs := out.String()
	for _, sk := range []string{sk0, prev.SecretAccessKey, cur.SecretAccessKey} {
		if strings.Contains(logs, sk) {
			t.Errorf("function output contains a secret access key")
		}
	}
	if !strings.Contains(logs, `"outcome":"success"`) {
		t.Errorf("no success line in the function output:\n%s", logs)
	}
	if os.Getenv("IAMKEY_E2E_VERBOSE") != "" {
		t.Log(logs)
	}
}
