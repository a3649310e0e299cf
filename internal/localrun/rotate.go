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

// Emulator holds the clients of the local AWS API emulator that a rotation
// needs: Secrets Manager, and Lambda and IAM for the stand-in function that
// RotateSecret insists on finding.
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

const standInName = "secrets-rotation-local-runner"

// standInFunction registers, once, a Lambda function in the emulator for
// RotateSecret to point at. The emulator never runs its code (there is no
// Docker engine for it); the real function runs under the runtime interface
// emulator and is invoked by this package.
func (e *Emulator) standInFunction(ctx context.Context) (string, error) {
	if out, err := e.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(standInName)}); err == nil {
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
		FunctionName:  aws.String(standInName),
		Role:          aws.String(roleARN),
		Runtime:       lambdatypes.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Architectures: []lambdatypes.Architecture{lambdatypes.ArchitectureArm64},
		Code:          &lambdatypes.FunctionCode{ZipFile: code},
	})
	if err != nil {
		var exists *lambdatypes.ResourceConflictException
		if errors.As(err, &exists) {
			got, gerr := e.Lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(standInName)})
			if gerr == nil {
				return aws.ToString(got.Configuration.FunctionArn), nil
			}
		}
		return "", fmt.Errorf("register stand-in rotation function: %w", err)
	}
	return aws.ToString(out.FunctionArn), nil
}

func (e *Emulator) standInRole(ctx context.Context) (string, error) {
	if out, err := e.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(standInName)}); err == nil {
		return aws.ToString(out.Role.Arn), nil
	}
	out, err := e.IAM.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(standInName),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
	})
	if err != nil {
		var exists *iamtypes.EntityAlreadyExistsException
		if errors.As(err, &exists) {
			got, gerr := e.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(standInName)})
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

// OpenRotation does what RotateSecret does before it invokes the function:
// it turns rotation on and creates the AWSPENDING placeholder version whose
// id is token. It returns the secret's ARN.
func (e *Emulator) OpenRotation(ctx context.Context, secretID, token string) (string, error) {
	fn, err := e.standInFunction(ctx)
	if err != nil {
		return "", err
	}
	out, err := e.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId:           aws.String(secretID),
		ClientRequestToken: aws.String(token),
		RotationLambdaARN:  aws.String(fn),
		RotationRules:      &smtypes.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)},
		RotateImmediately:  aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("open rotation of %s: %w", secretID, err)
	}
	arn := aws.ToString(out.ARN)
	stages, err := e.Stages(ctx, arn)
	if err != nil {
		return "", err
	}
	if !slices.Contains(stages[token], "AWSPENDING") || slices.Contains(stages[token], "AWSCURRENT") {
		return "", fmt.Errorf("open rotation of %s: the emulator left version %s with stages %v, want [AWSPENDING]", secretID, token, stages[token])
	}
	return arn, nil
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
}

// Rotate opens a rotation of secretID and drives its four steps through inv.
func (e *Emulator) Rotate(ctx context.Context, secretID string, inv Invoker, opt Options) (Result, error) {
	if opt.Token == "" {
		opt.Token = NewToken()
	}
	if opt.Attempts <= 0 {
		opt.Attempts = 3
	}
	if opt.RetryDelay <= 0 {
		opt.RetryDelay = 200 * time.Millisecond
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
	start := time.Now()
	for _, step := range Steps {
		sr := RunStep(ctx, inv, events.SecretsManagerSecretRotationEvent{
			Step: step, SecretID: arn, ClientRequestToken: opt.Token,
		}, opt.Attempts, opt.RetryDelay)
		res.Steps = append(res.Steps, sr)
		if sr.Err != nil {
			res.Duration = time.Since(start)
			res.StagesAfter, _ = e.Stages(ctx, arn)
			return res, fmt.Errorf("%s failed after %d attempts: %w", step, sr.Attempts, sr.Err)
		}
	}
	res.Duration = time.Since(start)
	if err := e.CloseRotation(ctx, arn, opt.Token); err != nil {
		return res, err
	}
	res.StagesAfter, err = e.Stages(ctx, arn)
	return res, err
}

// CloseRotation does what Secrets Manager does after a successful
// finishSecret: it takes AWSPENDING off the new current version, so that the
// next RotateSecret does not see a rotation in progress. The emulators leave
// it in place.
func (e *Emulator) CloseRotation(ctx context.Context, arn, token string) error {
	stages, err := e.Stages(ctx, arn)
	if err != nil {
		return err
	}
	if !slices.Contains(stages[token], "AWSPENDING") {
		return nil
	}
	_, err = e.SM.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:            aws.String(arn),
		VersionStage:        aws.String("AWSPENDING"),
		RemoveFromVersionId: aws.String(token),
	})
	if err != nil {
		return fmt.Errorf("close rotation of %s: remove AWSPENDING from %s: %w", arn, token, err)
	}
	return nil
}

// RunStep invokes one step, up to attempts times.
func RunStep(ctx context.Context, inv Invoker, ev events.SecretsManagerSecretRotationEvent, attempts int, delay time.Duration) StepResult {
	sr := StepResult{Step: ev.Step}
	for sr.Attempts < attempts {
		sr.Attempts++
		t := time.Now()
		err := inv.Invoke(ctx, ev)
		sr.Duration = time.Since(t)
		sr.Err = err
		if err == nil {
			return sr
		}
		sr.Errors = append(sr.Errors, err)
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
