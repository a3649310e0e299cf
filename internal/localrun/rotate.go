package localrun

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Steps are the rotation steps in the order Secrets Manager invokes them.
var Steps = []string{"createSecret", "setSecret", "testSecret", "finishSecret"}

// The staging labels this package reads.
const (
	stageCurrent = "AWSCURRENT"
	stagePending = "AWSPENDING"
)

// Emulator holds the clients of the AWS API that a local rotation needs:
// Secrets Manager, and Lambda and IAM for the stand-in function that
// RotateSecret insists on finding. Despite its name it works against any
// endpoint the SDK is configured for; only AWS_ENDPOINT_URL says which.
type Emulator struct {
	SM     *secretsmanager.Client
	Lambda *lambda.Client
	IAM    *iam.Client
}

// NewEmulator makes the clients from cfg (which carries AWS_ENDPOINT_URL).
func NewEmulator(cfg aws.Config) *Emulator {
	return &Emulator{
		SM:     secretsmanager.NewFromConfig(cfg),
		Lambda: lambda.NewFromConfig(cfg),
		IAM:    iam.NewFromConfig(cfg),
	}
}

// StandInName is the name of the function (and its role) that a local
// rotation registers for RotateSecret to point at, when the secret has no
// rotation function of its own.
const StandInName = "secrets-rotation-local-runner"

// standInFunction registers, once, a Lambda function for RotateSecret to
// point at. Nobody runs its code (the emulator has no Docker engine for
// it): the real function runs under the runtime interface emulator and is
// invoked by this package.
func (e *Emulator) standInFunction(ctx context.Context) (string, error) {
	if out, err := e.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(StandInName)}); err == nil {
		return aws.ToString(out.Configuration.FunctionArn), nil
	}
	roleARN, err := e.standInRole(ctx)
	if err != nil {
		return "", err
	}
	code, err := standInZip()
	if err != nil {
		return "", err
	}
	out, err := e.Lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String(StandInName),
		Role:          aws.String(roleARN),
		Runtime:       lambdatypes.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Architectures: []lambdatypes.Architecture{lambdatypes.ArchitectureArm64},
		Code:          &lambdatypes.FunctionCode{ZipFile: code},
	})
	if err != nil {
		var exists *lambdatypes.ResourceConflictException
		if errors.As(err, &exists) {
			got, gerr := e.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(StandInName)})
			if gerr == nil {
				return aws.ToString(got.Configuration.FunctionArn), nil
			}
		}
		return "", fmt.Errorf("register stand-in rotation function: %w", err)
	}
	return aws.ToString(out.FunctionArn), nil
}

func (e *Emulator) standInRole(ctx context.Context) (string, error) {
	if out, err := e.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(StandInName)}); err == nil {
		return aws.ToString(out.Role.Arn), nil
	}
	out, err := e.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(StandInName),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
	})
	if err != nil {
		var exists *iamtypes.EntityAlreadyExistsException
		if errors.As(err, &exists) {
			got, gerr := e.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(StandInName)})
			if gerr == nil {
				return aws.ToString(got.Role.Arn), nil
			}
		}
		return "", fmt.Errorf("create stand-in role: %w", err)
	}
	return aws.ToString(out.Role.Arn), nil
}

func standInZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("bootstrap")
	if err != nil {
		return nil, err
	}
	if _, err := w.Write([]byte("#!/bin/sh\nexit 1\n")); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ErrRotationInProgress reports a secret that already has a rotation open:
// a version other than the current one carries AWSPENDING.
var ErrRotationInProgress = errors.New("a rotation is already in progress")

// OpenRotation does what RotateSecret does before it invokes the function:
// it turns rotation on and creates the AWSPENDING placeholder version whose
// id is token. It returns the secret's ARN. A secret that already has a
// rotation function keeps it and its schedule; one without gets the
// stand-in function and a 30-day schedule, since RotateSecret needs one.
func (e *Emulator) OpenRotation(ctx context.Context, secretID, token string) (string, error) {
	d, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return "", fmt.Errorf("describe %s: %w", secretID, err)
	}
	if id, ok := PendingVersion(d.VersionIdsToStages); ok {
		return "", fmt.Errorf("open rotation of %s: %w: version %s carries AWSPENDING (finish it, or end it with `rotationctl cancel %s`)",
			secretID, ErrRotationInProgress, id, secretID)
	}
	// The function is always named: moto forgets it when RotateSecret
	// omits it, and AWS takes it either way.
	in := &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: aws.String(token),
		RotationLambdaARN:  d.RotationLambdaARN,
		RotateImmediately:  aws.Bool(true),
	}
	if aws.ToString(d.RotationLambdaARN) == "" {
		fn, err := e.standInFunction(ctx)
		if err != nil {
			return "", err
		}
		in.RotationLambdaARN = aws.String(fn)
	}
	if d.RotationRules == nil {
		in.RotationRules = &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}
	}
	out, err := e.SM.RotateSecret(ctx, in)
	if err != nil {
		return "", fmt.Errorf("open rotation of %s: %w", secretID, err)
	}
	arn := aws.ToString(out.ARN)
	stages, err := e.Stages(ctx, arn)
	if err != nil {
		return "", err
	}
	if !slices.Contains(stages[token], stagePending) || slices.Contains(stages[token], stageCurrent) {
		return "", fmt.Errorf("open rotation of %s: the emulator left version %s with stages %v, want [AWSPENDING]", secretID, token, stages[token])
	}
	return arn, nil
}

// PendingVersion returns the version that carries AWSPENDING without
// AWSCURRENT: the version of a rotation that has not finished.
func PendingVersion(stages map[string][]string) (string, bool) {
	for id, st := range stages {
		if slices.Contains(st, stagePending) && !slices.Contains(st, stageCurrent) {
			return id, true
		}
	}
	return "", false
}

// CurrentVersion returns the version that carries AWSCURRENT.
func CurrentVersion(stages map[string][]string) (string, bool) {
	for id, st := range stages {
		if slices.Contains(st, stageCurrent) {
			return id, true
		}
	}
	return "", false
}

// Stages returns the staging labels of every version of the secret.
func (e *Emulator) Stages(ctx context.Context, secretID string) (map[string][]string, error) {
	out, err := e.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secretID)})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", secretID, err)
	}
	return out.VersionIdsToStages, nil
}

// NewToken returns a random version id in the UUID form Secrets Manager uses.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Options control a rotation run.
type Options struct {
	// Token is the version id of the new version; empty means a new one.
	Token string
	// Attempts is how many times a failing step is invoked before the
	// rotation gives up (Secrets Manager retries too). Default 3.
	Attempts int
	// RetryDelay is the pause between attempts. Default 200ms.
	RetryDelay time.Duration
	// Progress, when set, is called after every invocation, as it happens.
	Progress func(Attempt)
}

// Attempt is one invocation of a step.
type Attempt struct {
	Step     string
	Number   int // 1 for the first invocation of the step
	Of       int // the most invocations the step gets
	Duration time.Duration
	Err      error // nil when the step succeeded
}

// StepResult is what happened to one step.
type StepResult struct {
	Step     string
	Attempts int
	Duration time.Duration // of the successful attempt, or of the last one
	Err      error         // the last error, nil if the step succeeded
	Errors   []error       // every failed attempt
}

// Result is what happened to a rotation.
type Result struct {
	ARN          string
	Token        string
	StagesBefore map[string][]string
	StagesAfter  map[string][]string
	Steps        []StepResult
	Duration     time.Duration // of the four steps, without opening the rotation
	// Finished is true when the labels, read after the last step, show the
	// token's version AWSCURRENT: the rotation is complete whatever a step
	// reported.
	Finished bool
	// Warnings are errors that did not stop the rotation: a step that
	// reported a failure although the labels show it took effect (the SDK
	// re-sent a request after the server had closed the connection, and
	// the second one found the work done).
	Warnings []error
}

// Rotate opens a rotation of secretID and drives its four steps through inv.
// It returns an error unless the labels read at the end show the rotation
// finished.
func (e *Emulator) Rotate(ctx context.Context, secretID string, inv Invoker, opt Options) (Result, error) {
	if opt.Token == "" {
		opt.Token = NewToken()
	}
	res := Result{Token: opt.Token}
	before, err := e.Stages(ctx, secretID)
	if err != nil {
		return res, err
	}
	res.StagesBefore = before
	arn, err := e.OpenRotation(ctx, secretID, opt.Token)
	if err != nil {
		return res, err
	}
	res.ARN = arn
	err = e.Drive(ctx, &res, inv, opt)
	return res, err
}

// Drive invokes the four steps for the rotation res.Token of res.ARN, which
// must be open (its version carries AWSPENDING), then reads the labels again
// and reports from them: a rotation whose token ended AWSCURRENT succeeded,
// and its AWSPENDING label is removed (what Secrets Manager does after a
// rotation it drives; the emulators leave it).
func (e *Emulator) Drive(ctx context.Context, res *Result, inv Invoker, opt Options) error {
	if opt.Attempts <= 0 {
		opt.Attempts = 3
	}
	if opt.RetryDelay <= 0 {
		opt.RetryDelay = 200 * time.Millisecond
	}
	start := time.Now()
	var stepErr error
	for _, step := range Steps {
		sr := RunStep(ctx, inv, events.SecretsManagerSecretRotationEvent{
			Step: step, SecretID: res.ARN, ClientRequestToken: res.Token,
		}, opt.Attempts, opt.RetryDelay, opt.Progress)
		res.Steps = append(res.Steps, sr)
		if sr.Err != nil {
			stepErr = fmt.Errorf("%s failed after %d attempts: %w", step, sr.Attempts, sr.Err)
			break
		}
	}
	res.Duration = time.Since(start)
	return e.conclude(ctx, res, stepErr)
}

// conclude reads the labels after the steps and decides from them.
func (e *Emulator) conclude(ctx context.Context, res *Result, stepErr error) error {
	// The context may be cancelled (Ctrl-C): the labels are still worth
	// reading, so that the report says where the secret stands.
	rctx := context.WithoutCancel(ctx)
	stages, err := e.Stages(rctx, res.ARN)
	if err != nil {
		if stepErr != nil {
			return errors.Join(stepErr, err)
		}
		return err
	}
	res.StagesAfter = stages
	if !slices.Contains(stages[res.Token], stageCurrent) {
		if stepErr != nil {
			return stepErr
		}
		return fmt.Errorf("the rotation did not finish: version %s has stages %v", res.Token, stages[res.Token])
	}
	res.Finished = true
	if stepErr != nil {
		res.Warnings = append(res.Warnings, fmt.Errorf("a step reported a failure, but the labels show the rotation finished: %w", stepErr))
	}
	if err := e.CloseRotation(rctx, res.ARN, res.Token); err != nil {
		return err
	}
	res.StagesAfter, err = e.Stages(rctx, res.ARN)
	return err
}

// CloseRotation does what Secrets Manager does after a successful
// finishSecret: it takes AWSPENDING off the new current version, so that the
// next RotateSecret does not see a rotation in progress. The emulators leave
// it in place. A removal that fails because the label is gone already (the
// SDK re-sent the request after the server closed the connection) is a
// success: the labels are read again before anything is reported.
func (e *Emulator) CloseRotation(ctx context.Context, arn, token string) error {
	stages, err := e.Stages(ctx, arn)
	if err != nil {
		return err
	}
	if !slices.Contains(stages[token], stagePending) {
		return nil
	}
	_, err = e.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(arn),
		VersionStage:        aws.String(stagePending),
		RemoveFromVersionId: aws.String(token),
	})
	if err == nil {
		return nil
	}
	if again, rerr := e.Stages(ctx, arn); rerr == nil && !slices.Contains(again[token], stagePending) {
		return nil
	}
	return fmt.Errorf("close rotation of %s: remove AWSPENDING from %s: %w", arn, token, err)
}

// RunStep invokes one step, up to attempts times, and reports each
// invocation to progress (which may be nil).
func RunStep(ctx context.Context, inv Invoker, ev events.SecretsManagerSecretRotationEvent, attempts int, delay time.Duration, progress func(Attempt)) StepResult {
	sr := StepResult{Step: ev.Step}
	for sr.Attempts < attempts {
		sr.Attempts++
		t := time.Now()
		err := inv.Invoke(ctx, ev)
		sr.Duration = time.Since(t)
		sr.Err = err
		if progress != nil {
			progress(Attempt{Step: ev.Step, Number: sr.Attempts, Of: attempts, Duration: sr.Duration, Err: err})
		}
		if err == nil {
			return sr
		}
		sr.Errors = append(sr.Errors, err)
		var se *StartError
		if errors.As(err, &se) {
			// A function that cannot start will not start on a retry.
			return sr
		}
		if sr.Attempts < attempts {
			select {
			case <-ctx.Done():
				sr.Err = ctx.Err()
				return sr
			case <-time.After(delay):
			}
		}
	}
	return sr
}
