package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// ctl runs rotationctl in-process and returns its output and exit status.
func ctl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustCtl runs rotationctl and fails the test unless it exits 0.
func mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := ctl(t, args...)
	if code != 0 {
		t.Fatalf("rotationctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

var (
	genericOnce sync.Once
	genericBin  string
)

// genericBootstrap builds functions/generic for this machine once.
func genericBootstrap(t *testing.T) string {
	genericOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rotationctl-test-")
		if err != nil {
			t.Fatal(err)
		}
		genericBin, err = localrun.BuildBootstrap(context.Background(), filepath.Join(testbed.ModuleRoot(t), "functions", "generic"), dir)
		if err != nil {
			t.Fatal(err)
		}
	})
	if genericBin == "" {
		t.Fatal("functions/generic did not build")
	}
	return genericBin
}

func stages(t *testing.T, em *localrun.Emulator, arn string) map[string][]string {
	t.Helper()
	st, err := em.Stages(context.Background(), arn)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func versionWith(t *testing.T, em *localrun.Emulator, arn, stage string) string {
	t.Helper()
	for id, st := range stages(t, em, arn) {
		if slices.Contains(st, stage) {
			return id
		}
	}
	return ""
}

func describe(t *testing.T, em *localrun.Emulator, arn string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	d, err := em.SM.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, c := range commands {
		_, errOut, code := ctl(t, c.name, "-h")
		if code != 0 || !strings.Contains(errOut, "Usage: rotationctl "+c.name) || !strings.Contains(errOut, "-region") {
			t.Errorf("%s -h: exit %d\n%s", c.name, code, errOut)
		}
	}
	if _, errOut, code := ctl(t); code != 2 || !strings.Contains(errOut, "rotationctl rollback") {
		t.Errorf("no arguments: exit %d\n%s", code, errOut)
	}
	if _, _, code := ctl(t, "rotate"); code != 2 {
		t.Errorf("rotate without a secret: exit %d, want 2", code)
	}
	if _, _, code := ctl(t, "explode"); code != 2 {
		t.Errorf("an unknown command: exit %d, want 2", code)
	}
}

// TestRotateLocally rotates with the function's package directory, which
// rotationctl builds for this machine, and shows each step as it ends.
func TestRotateLocally(t *testing.T) {
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, `{"client":"x","api_key":"sk_test_initial"}`)
	dir := filepath.Join(testbed.ModuleRoot(t), "functions", "generic")
	out := mustCtl(t, "rotate", arn, "-bootstrap", dir, "-function-log", filepath.Join(t.TempDir(), "fn.log"),
		"-env", "SECRET_KIND=apikey", "-env", "SECRET_FIELD=api_key", "-env", "KEY_PREFIX=sk_test_")
	for _, step := range localrun.Steps {
		if !regexpMatch(`(?m)^  `+step+` +\S+  attempt 1  ok$`, out) {
			t.Errorf("no progress line for %s:\n%s", step, out)
		}
	}
	if !strings.Contains(out, "rotation succeeded") {
		t.Fatalf("output:\n%s", out)
	}
	if id := versionWith(t, em, arn, "AWSPENDING"); id != "" && !slices.Contains(stages(t, em, arn)[id], "AWSCURRENT") {
		t.Errorf("AWSPENDING left on %s", id)
	}
	if strings.Contains(out, "sk_test_initial") {
		t.Error("a secret value was printed")
	}
}

// TestRotateRefusesALambdaBuildOnThisMachine: the arm64 Lambda build (or
// amd64 on an arm64 machine) is refused before anything changes, with the
// real cause, instead of an empty HTTP 502.
func TestRotateRefusesALambdaBuildOnThisMachine(t *testing.T) {
	other := "arm64"
	if strings.Contains(runtimeArch(), "arm64") {
		other = "amd64"
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	buildFor(t, other, bin)
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "initial")
	before := stages(t, em, arn)
	_, errOut, code := ctl(t, "rotate", arn, "-bootstrap", bin)
	if code != 1 || !strings.Contains(errOut, "linux/"+other) || !strings.Contains(errOut, "exec format error") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if after := stages(t, em, arn); len(after) != len(before) {
		t.Errorf("stages changed: %v -> %v", before, after)
	}
}

// TestCancelAfterAFunctionThatCannotStart: the failed rotation leaves the
// secret stuck (a second rotate is refused with the way out), cancel ends
// it, says what it changed, and the next rotation succeeds. A second cancel
// finds nothing to do and changes nothing.
func TestCancelAfterAFunctionThatCannotStart(t *testing.T) {
	script := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'generic: SECRET_KIND=\"passwd\" is not one of password, apikey, signingkey' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "initial-value-0001")
	current := versionWith(t, em, arn, "AWSCURRENT")

	out, _, code := ctl(t, "rotate", arn, "-bootstrap", script)
	if code != 1 || !strings.Contains(out, "the function did not run: Runtime exited with error: exit status 2") || !strings.Contains(out, "is not one of password") {
		t.Fatalf("a function that cannot start: exit %d\n%s", code, out)
	}
	pending := versionWith(t, em, arn, "AWSPENDING")
	if pending == "" || !strings.Contains(out, "rotationctl cancel") {
		t.Fatalf("want a stuck rotation and the way out; pending %q\n%s", pending, out)
	}
	_, errOut, code := ctl(t, "rotate", arn, "-bootstrap", genericBootstrap(t))
	if code != 1 || !strings.Contains(errOut, "already in progress") || !strings.Contains(errOut, "rotationctl cancel") {
		t.Fatalf("rotate while stuck: exit %d\n%s", code, errOut)
	}

	out = mustCtl(t, "cancel", arn)
	for _, want := range []string{"CancelRotateSecret", "automatic rotation is now OFF", "removed AWSPENDING from version " + pending, "AWSCURRENT is version " + current} {
		if !strings.Contains(out, want) {
			t.Errorf("cancel does not say %q:\n%s", want, out)
		}
	}
	st := stages(t, em, arn)
	if slices.Contains(st[pending], "AWSPENDING") || !slices.Contains(st[pending], KeptLabel) || !slices.Contains(st[current], "AWSCURRENT") {
		t.Errorf("stages after cancel: %v", st)
	}
	if e := describe(t, em, arn).RotationEnabled; e != nil && *e {
		t.Error("rotation is still on after CancelRotateSecret")
	}

	out = mustCtl(t, "cancel", arn)
	if !strings.Contains(out, "no rotation in progress") || !strings.Contains(out, "Nothing changed") {
		t.Errorf("second cancel:\n%s", out)
	}
	if again := stages(t, em, arn); !mapsEqual(again, st) {
		t.Errorf("a cancel with nothing to do changed the stages: %v -> %v", st, again)
	}

	out = mustCtl(t, "rotate", arn, "-bootstrap", genericBootstrap(t), "-function-log", filepath.Join(t.TempDir(), "fn.log"))
	if !strings.Contains(out, "rotation succeeded") {
		t.Fatalf("rotate after cancel:\n%s", out)
	}
}

// TestCancelKeepsTheValueOfAFailedTest: testSecret fails (the provider
// refuses the new key), cancel with -keep-enabled removes AWSPENDING, keeps
// rotation on, and the version's value stays readable.
func TestCancelKeepsTheValueOfAFailedTest(t *testing.T) {
	url, caFile := refusingProvider(t)
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "initial-value-0002")
	out, _, code := ctl(t, "rotate", arn, "-bootstrap", genericBootstrap(t), "-attempts", "2", "-function-log", filepath.Join(t.TempDir(), "fn.log"),
		"-env", "VERIFY_URL="+url, "-env", "VERIFY_CA_FILE="+caFile)
	if code != 1 || !strings.Contains(out, "testSecret") || !strings.Contains(out, "attempt 2 of 2 FAILED") {
		t.Fatalf("want testSecret to fail twice: exit %d\n%s", code, out)
	}
	pending := versionWith(t, em, arn, "AWSPENDING")
	value := testbed.ValueOf(t, em, arn, pending)

	out = mustCtl(t, "cancel", arn, "-keep-enabled")
	if strings.Contains(out, "CancelRotateSecret") || !strings.Contains(out, "removed AWSPENDING") {
		t.Errorf("cancel -keep-enabled:\n%s", out)
	}
	if e := describe(t, em, arn).RotationEnabled; e == nil || !*e {
		t.Error("-keep-enabled turned rotation off")
	}
	if got := testbed.ValueOf(t, em, arn, pending); got != value {
		t.Error("the cancelled version lost its value")
	}
	if strings.Contains(out, value) {
		t.Error("cancel printed a secret value")
	}

	// Rotation is on but no rotation ever finished: nothing to roll back to.
	before := stages(t, em, arn)
	_, errOut, code := ctl(t, "rollback", arn, "-bootstrap", genericBootstrap(t))
	if code != 1 || !strings.Contains(errOut, "has no AWSPREVIOUS version") || !strings.Contains(errOut, "nothing changed") {
		t.Errorf("rollback without AWSPREVIOUS: exit %d\n%s", code, errOut)
	}
	if after := stages(t, em, arn); !mapsEqual(before, after) {
		t.Errorf("the refused rollback changed the stages: %v -> %v", before, after)
	}
}

// refusingProvider starts an HTTPS server on 127.0.0.1 that refuses every
// key, as a third-party API would refuse a key it does not know. It returns
// its URL and a file holding its certificate.
func refusingProvider(t *testing.T) (url, caFile string) {
	t.Helper()
	addr, err := localrun.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown API key", http.StatusUnauthorized)
	})}, TLS: &tls.Config{MinVersion: tls.VersionTLS12}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "provider.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL + "/v1/check", caFile
}

// TestStatus shows a rotated secret, a stuck one with its last failure read
// from the function's log, and one that requires rotation but has none.
func TestStatus(t *testing.T) {
	em := testbed.Emulator(t)
	prefix := "status-" + localrun.NewToken()[:8] + "/"
	create := func(name, value string, tags ...string) string {
		in := &secretsmanager.CreateSecretInput{Name: aws.String(prefix + name), SecretString: aws.String(value)}
		for i := 0; i+1 < len(tags); i += 2 {
			in.Tags = append(in.Tags, smTag(tags[i], tags[i+1]))
		}
		out, err := em.SM.CreateSecret(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			em.SM.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})
		})
		return aws.ToString(out.ARN)
	}
	good := create("good", "v1")
	stuck := create("stuck", "v1")
	create("required", "v1", "secrets-rotation:required", "true")
	mustCtl(t, "rotate", good, "-bootstrap", genericBootstrap(t), "-function-log", filepath.Join(t.TempDir(), "fn.log"))
	url, caFile := refusingProvider(t)
	fnLog := filepath.Join(t.TempDir(), "fn.log")
	if _, _, code := ctl(t, "rotate", stuck, "-bootstrap", genericBootstrap(t), "-attempts", "1", "-function-log", fnLog,
		"-env", "VERIFY_URL="+url, "-env", "VERIFY_CA_FILE="+caFile); code != 1 {
		t.Fatal("the rotation with a refusing provider did not fail")
	}
	// Lambda would send the function's output to its log group: ship it to
	// CloudWatch Logs (moto; LocalStack's logs service is off in the bed).
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", testbed.MotoURL(t))
	shipLog(t, "/aws/lambda/"+localrun.StandInName, fnLog)

	out := mustCtl(t, "status", "-prefix", prefix, "-json")
	var rows []secretStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	byName := map[string]secretStatus{}
	for _, r := range rows {
		byName[strings.TrimPrefix(r.Name, prefix)] = r
	}
	if len(rows) != 3 {
		t.Fatalf("want 3 secrets, got %d:\n%s", len(rows), out)
	}
	g, s, r := byName["good"], byName["stuck"], byName["required"]
	if !g.RotationEnabled || g.Pending != nil || g.Overdue || g.NextRotation == nil || g.Function != localrun.StandInName || g.Schedule != "every 30 days" {
		t.Errorf("good: %+v", g)
	}
	if s.Pending == nil || s.Pending.VersionID != versionWith(t, em, stuck, "AWSPENDING") || s.Pending.Since == nil {
		t.Errorf("stuck: pending %+v", s.Pending)
	}
	if s.LastFailure == nil || s.LastFailure.Step != "testSecret" || !strings.Contains(s.LastFailure.Error, "401") {
		t.Errorf("stuck: last failure %+v (logs note %q)", s.LastFailure, s.LogsNote)
	}
	if r.RotationEnabled || !r.Required {
		t.Errorf("required: %+v", r)
	}

	text := mustCtl(t, "status", "-prefix", prefix)
	for _, want := range []string{"SECRET", prefix + "stuck", "PENDING " + s.Pending.VersionID[:8], "OFF but required", "testSecret:"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}

// TestRollbackGeneric: two rotations, then rollback restores the value of
// AWSPREVIOUS through the function; the refusals change nothing.
func TestRollbackGeneric(t *testing.T) {
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "value-zero-0003")
	bin := genericBootstrap(t)
	log := filepath.Join(t.TempDir(), "fn.log")

	_, errOut, code := ctl(t, "rollback", arn, "-bootstrap", bin)
	if code != 1 || !strings.Contains(errOut, "rotation of") || !strings.Contains(errOut, "is off") {
		t.Errorf("rollback of a secret never rotated: exit %d\n%s", code, errOut)
	}
	mustCtl(t, "rotate", arn, "-bootstrap", bin, "-function-log", log)
	mustCtl(t, "rotate", arn, "-bootstrap", bin, "-function-log", log)
	curID := versionWith(t, em, arn, "AWSCURRENT")
	prev := testbed.ValueAt(t, em, arn, "AWSPREVIOUS")
	before := stages(t, em, arn)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-to", localrun.NewToken()}, "has no version"},
		{[]string{"-to", curID}, "is AWSCURRENT already"},
	} {
		_, errOut, code := ctl(t, append([]string{"rollback", arn, "-bootstrap", bin}, c.args...)...)
		if code != 1 || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "nothing changed") {
			t.Errorf("rollback %v: exit %d\n%s", c.args, code, errOut)
		}
	}
	if after := stages(t, em, arn); !mapsEqual(before, after) {
		t.Errorf("a refused rollback changed the stages: %v -> %v", before, after)
	}

	out := mustCtl(t, "rollback", arn, "-bootstrap", bin, "-function-log", log)
	for _, step := range localrun.Steps {
		if !strings.Contains(out, "  "+step) {
			t.Errorf("rollback did not run %s:\n%s", step, out)
		}
	}
	if !strings.Contains(out, "rollback succeeded") || !strings.Contains(out, "kind    generic") {
		t.Fatalf("rollback:\n%s", out)
	}
	if got := testbed.ValueAt(t, em, arn, "AWSCURRENT"); got != prev {
		t.Error("AWSCURRENT is not the value of the old AWSPREVIOUS")
	}
	if got := versionWith(t, em, arn, "AWSPREVIOUS"); got != curID {
		t.Errorf("AWSPREVIOUS is %s, want the version that was current (%s)", got, curID)
	}
	if strings.Contains(out, prev) {
		t.Error("rollback printed a secret value")
	}

	// A rotation in progress is refused.
	url, caFile := refusingProvider(t)
	ctl(t, "rotate", arn, "-bootstrap", bin, "-attempts", "1", "-function-log", log, "-env", "VERIFY_URL="+url, "-env", "VERIFY_CA_FILE="+caFile)
	st := stages(t, em, arn)
	_, errOut, code = ctl(t, "rollback", arn, "-bootstrap", bin)
	if code != 1 || !strings.Contains(errOut, "is in progress") || !strings.Contains(errOut, "rotationctl cancel") {
		t.Errorf("rollback during a rotation: exit %d\n%s", code, errOut)
	}
	if after := stages(t, em, arn); !mapsEqual(st, after) {
		t.Errorf("a refused rollback changed the stages: %v -> %v", st, after)
	}
}

// TestRotateFollowsSecretsManager: without -bootstrap, rotate calls
// RotateSecret and follows the rotation from the labels and the function's
// log. LocalStack cannot run the function (no Docker) and swallows the
// invoke error, so the test does the part of Secrets Manager and Lambda it
// lacks: it invokes the real function under the runtime interface emulator
// for each step and ships the function's log lines to CloudWatch Logs.
func TestRotateFollowsSecretsManager(t *testing.T) {
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "initial-value-0004")
	mustCtl(t, "rotate", arn, "-bootstrap", genericBootstrap(t), "-function-log", filepath.Join(t.TempDir(), "fn.log")) // attaches the stand-in function
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", testbed.MotoURL(t))
	group := "/aws/lambda/" + localrun.StandInName

	out := &testbed.LogBuffer{}
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{Binary: testbed.RIEBinary(t), Bootstrap: genericBootstrap(t), Output: out})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()

	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	before := stages(t, em, arn)
	go func() {
		var o, e bytes.Buffer
		code := run(context.Background(), []string{"rotate", arn, "-poll", "100ms", "-timeout", "60s"}, &o, &e)
		done <- result{o.String(), e.String(), code}
	}()

	var token string
	for token == "" {
		select {
		case r := <-done:
			t.Fatalf("rotate ended before the rotation opened: exit %d\n%s\n%s", r.code, r.out, r.errOut)
		case <-time.After(50 * time.Millisecond):
		}
		for id, st := range stages(t, em, arn) {
			if _, old := before[id]; !old && slices.Contains(st, "AWSPENDING") {
				token = id
			}
		}
	}
	shipped := 0
	for _, step := range localrun.Steps {
		if err := rie.Invoke(context.Background(), events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, out.String())
		}
		// The emulator relays the step's log line a moment after the
		// invoke returns: ship only once it is there.
		var lines []string
		for wait := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			lines = lines[:0]
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(l, "{") {
					lines = append(lines, l)
				}
			}
			if slices.ContainsFunc(lines[shipped:], func(l string) bool {
				return strings.Contains(l, `"msg":"rotation step done"`) && strings.Contains(l, `"step":"`+step+`"`)
			}) {
				break
			}
			if time.Now().After(wait) {
				t.Fatalf("no log line of %s after 5s:\n%s", step, out.String())
			}
		}
		shipLines(t, group, lines[shipped:])
		shipped = len(lines)
	}
	if err := em.CloseRotation(context.Background(), arn, token); err != nil { // what Secrets Manager does after finishSecret
		t.Fatal(err)
	}
	r := <-done
	if r.code != 0 {
		t.Fatalf("rotate: exit %d\n%s\n%s", r.code, r.out, r.errOut)
	}
	for _, step := range localrun.Steps {
		if !regexpMatch(`(?m)^\d\d:\d\d:\d\d  `+step+` +ok `, r.out) {
			t.Errorf("no log line for %s:\n%s", step, r.out)
		}
	}
	t.Logf("rotate output:\n%s", r.out)
	for _, want := range []string{"RotateSecret accepted", "version " + token + ": AWSPENDING", "AWSCURRENT", "rotation succeeded"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
}
