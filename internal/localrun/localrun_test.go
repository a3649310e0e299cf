package localrun_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/generic"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The emulator's output when a bootstrap cannot be executed, and when it
// exits at once (aws-lambda-rie, copied from real runs).
const (
	execFormatOutput = `27 Nov 2026 06:47:05,410 [INFO] (rapid) INIT START(type: on-demand, phase: invoke)
27 Nov 2026 06:47:05,410 [WARNING] (rapid) First fatal error stored in appctx: Runtime.InvalidEntrypoint
27 Nov 2026 06:47:05,410 [INFO] (rapid) INVOKE START(requestId: 1abc4946-a99e-49a8-b127-30f010caa17e)
27 Nov 2026 06:47:05,410 [ERROR] (rapid) Invoke failed error=fork/exec /tmp/arm64/bootstrap: exec format error InvokeID=1abc4946-a99e-49a8-b127-30f010caa17e
27 Nov 2026 06:47:05,410 [ERROR] (rapid) Invoke DONE failed: Runtime.InvalidEntrypoint
`
	exitOutput = `START RequestId: a7e86e6e-f04a-44ac-8a10-237ec4d55a87 Version: $LATEST
27 Nov 2026 06:47:07,817 [INFO] (rapid) INIT START(type: on-demand, phase: init)
cannot start: missing config
27 Nov 2026 06:47:07,818 [WARNING] (rapid) Process runtime-1 exited: exit status 3
27 Nov 2026 06:47:07,818 [ERROR] (rapid) Init failed InvokeID= error=Runtime exited with error: exit status 3
27 Nov 2026 06:47:07,819 [ERROR] (rapid) Invoke failed error=Runtime exited with error: exit status 3 InvokeID=a7e86e6e-f04a-44ac-8a10-237ec4d55a87
`
)

func TestStartErrorNamesTheEmulatorsCause(t *testing.T) {
	for _, c := range []struct {
		out, cause, output string
	}{
		{execFormatOutput, "fork/exec /tmp/arm64/bootstrap: exec format error", ""},
		{exitOutput, "Runtime exited with error: exit status 3", "cannot start: missing config"},
		// The emulator logs the fields of a line in any order.
		{strings.NewReplacer(
			"Init failed InvokeID= error=Runtime exited with error: exit status 3", "Init failed error=Runtime exited with error: exit status 3 InvokeID=",
			"Invoke failed error=Runtime exited with error: exit status 3 InvokeID=a7e86e6e-f04a-44ac-8a10-237ec4d55a87", "Invoke failed InvokeID=a7e86e6e-f04a-44ac-8a10-237ec4d55a87 error=Runtime exited with error: exit status 3",
		).Replace(exitOutput), "Runtime exited with error: exit status 3", "cannot start: missing config"},
	} {
		se := localrun.ParseStartError(c.out)
		if se == nil {
			t.Fatalf("no cause found in:\n%s", c.out)
		}
		if se.Cause != c.cause {
			t.Errorf("cause %q, want %q", se.Cause, c.cause)
		}
		if got := strings.Join(se.Output, "|"); got != c.output {
			t.Errorf("function output %q, want %q", got, c.output)
		}
	}
	if se := localrun.ParseStartError("START RequestId: x\nEND RequestId: x\n"); se != nil {
		t.Errorf("found a cause in an invoke that did not fail: %v", se)
	}
}

// TestCheckBootstrapRefusesAnotherArchitecture: the Lambda build (arm64 on
// an x86_64 machine, or the other way round) is refused before the emulator
// starts, with both architectures and the way out named.
func TestCheckBootstrapRefusesAnotherArchitecture(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module probe\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+other)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build for %s: %v\n%s", other, err, out)
	}
	err := localrun.CheckBootstrap(bin)
	if err == nil {
		t.Fatalf("a linux/%s bootstrap was accepted on %s", other, runtime.GOARCH)
	}
	for _, want := range []string{"linux/" + other, runtime.GOARCH, "exec format error", "build it for this machine"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	host, err := localrun.BuildBootstrap(context.Background(), dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := localrun.CheckBootstrap(host); err != nil {
		t.Errorf("the host build is refused: %v", err)
	}
	plain := filepath.Join(dir, "main.go")
	if err := localrun.CheckBootstrap(plain); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Errorf("a file without the executable bit: %v", err)
	}
	if err := localrun.CheckBootstrap(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a directory: %v", err)
	}
}

// TestFunctionThatCannotStart: a bootstrap that exits at once is reported
// with the emulator's reason and the function's own last words, after one
// attempt (a retry cannot help), and the rotation is left open, as a failed
// rotation is.
func TestFunctionThatCannotStart(t *testing.T) {
	script := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'cannot start: KMS_KEY_ID is not set' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var out testbed.LogBuffer
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{Binary: testbed.RIEBinary(t), Bootstrap: script, Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "initial")
	res, err := em.Rotate(context.Background(), arn, rie, localrun.Options{Attempts: 3})
	var se *localrun.StartError
	if !errors.As(err, &se) {
		t.Fatalf("want a *StartError, got %v", err)
	}
	if !strings.Contains(se.Cause, "exit status 3") || !slices.Contains(se.Output, "cannot start: KMS_KEY_ID is not set") {
		t.Errorf("cause %q, output %q", se.Cause, se.Output)
	}
	if n := res.Steps[0].Attempts; n != 1 {
		t.Errorf("a function that cannot start was invoked %d times: %v\nthe emulator's output:\n%s", n, res.Steps[0].Errors, out.String())
	}
	if res.Finished || !slices.Contains(res.StagesAfter[res.Token], "AWSPENDING") {
		t.Errorf("finished %v, stages of the token %v", res.Finished, res.StagesAfter[res.Token])
	}
}

// lostResponse runs the real engine and then, for the steps named, reports
// the error a client gets when the server closed the connection after it
// had done the work: the test plays the network, not an AWS API.
type lostResponse struct {
	engine *rotation.Engine
	steps  []string
}

func (l lostResponse) Invoke(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	if err := l.engine.Handle(ctx, ev); err != nil {
		return err
	}
	if slices.Contains(l.steps, ev.Step) {
		return errors.New("read tcp 127.0.0.1:50412->127.0.0.1:4566: read: connection reset by peer")
	}
	return nil
}

// TestLabelsDecideTheOutcome: finishSecret did its work but its answer was
// lost (every attempt of it): the labels show the rotation finished, so it
// is reported finished, with the error as a warning, and closed.
func TestLabelsDecideTheOutcome(t *testing.T) {
	em := testbed.Emulator(t)
	cfg, err := generic.ConfigFromEnv(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	eng := rotation.New(em.SM, generic.New(cfg), rotation.Options{TargetType: "generic"})
	arn := testbed.CreateSecret(t, em, "initial")
	res, err := em.Rotate(context.Background(), arn, lostResponse{eng, []string{"finishSecret"}}, localrun.Options{Attempts: 2, RetryDelay: 1})
	if err != nil {
		t.Fatalf("reported as failed: %v", err)
	}
	if !res.Finished || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Error(), "connection reset") {
		t.Errorf("finished %v, warnings %v", res.Finished, res.Warnings)
	}
	if got := res.StagesAfter[res.Token]; !slices.Equal(got, []string{"AWSCURRENT"}) {
		t.Errorf("the new version has stages %v, want [AWSCURRENT]", got)
	}
}

// TestCloseRotationAfterALostAnswer: the removal of AWSPENDING took effect,
// the answer was lost and the re-sent request found the label gone. The
// labels are read again: the rotation is closed.
func TestCloseRotationAfterALostAnswer(t *testing.T) {
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "initial")
	token := localrun.NewToken()
	if _, err := em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(arn), ClientRequestToken: aws.String(token), SecretString: aws.String("next"),
		VersionStages: []string{"AWSPENDING", "AWSCURRENT"},
	}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	lost := false
	lossy := *em
	lossy.SM = secretsmanager.NewFromConfig(testbed.AWSConfig(t), func(o *secretsmanager.Options) {
		o.Retryer = aws.NopRetryer{}
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("loseAnswer",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleInitialize(ctx, in)
					if err == nil && middleware.GetOperationName(ctx) == "UpdateSecretVersionStage" {
						once.Do(func() { lost, err = true, errors.New("connection reset by peer") })
					}
					return out, md, err
				}), middleware.After)
		})
	})
	if err := lossy.CloseRotation(context.Background(), arn, token); err != nil {
		t.Fatalf("close after a lost answer: %v", err)
	}
	if !lost {
		t.Fatal("no answer was lost: the test did not test anything")
	}
	stages, err := em.Stages(context.Background(), arn)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(stages[token], "AWSPENDING") {
		t.Errorf("AWSPENDING still on %s: %v", token, stages[token])
	}
}

func TestFreeAddrIsLoopbackBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		addr, err := localrun.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := strings.Cut(addr, ":")
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p >= 32768 || p < 1024 {
			t.Fatalf("FreeAddr gave %s", addr)
		}
	}
}
