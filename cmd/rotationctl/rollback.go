package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rollback"
)

const rollbackAbout = `Makes an older value of SECRET current again (AWSPREVIOUS, or the version
-to names) through the rotation protocol, so that the target system follows:
the value to restore is stored as the AWSPENDING value of a new version, and
the rotation function runs createSecret (which keeps it), setSecret,
testSecret and finishSecret on it. Against AWS the secret's own function is
invoked through the Lambda API (lambda:InvokeFunction); -bootstrap or
-invoke-url run a function locally instead, as for rotate.

What comes back depends on the kind of secret: a database gets its old
password (single user) or switches back to the other user (alternating);
datakey and jwtkeys make the old key primary again and keep the newer ones
for decryption and verification. It refuses, changing nothing, when there is
nothing to roll back to, a rotation is in progress, the rotation is off, or
the old value cannot work any more (an expired certificate, a deleted or
inactive access key, an alternating-users version naming the user in use).`

func runRollback(ctx context.Context, c cli, args []string) error {
	fs := newFlags(c, "rollback", "SECRET [-to VERSION] [flags]", rollbackAbout)
	var (
		af awsFlags
		lf localFlags
	)
	af.register(fs)
	lf.register(fs)
	to := fs.String("to", "", "version id to make current again (default: the version labelled AWSPREVIOUS)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	secret, err := oneSecret(fs, args)
	if err != nil {
		return err
	}
	cfg, err := af.load(ctx)
	if err != nil {
		return err
	}
	em := localrun.NewEmulator(cfg)
	d, err := em.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		return fmt.Errorf("describe %s: %w", secret, err)
	}
	meta := audit.FromDescribe(d)
	if id, open := meta.PendingVersion(); open {
		return &rollback.Refusal{
			Reason:  fmt.Sprintf("a rotation of %s is in progress (version %s carries AWSPENDING)", meta.ARN, id),
			Instead: "let it finish, or end it with `rotationctl cancel " + secret + "`, then roll back",
		}
	}
	if !meta.Enabled() {
		return &rollback.Refusal{
			Reason:  fmt.Sprintf("rotation of %s is off: its rotation function refuses to run a step on it", meta.ARN),
			Instead: "turn rotation on (aws secretsmanager rotate-secret --secret-id " + secret + " --rotation-lambda-arn ARN --rotation-rules ...), which also rotates, then roll back",
		}
	}
	currentID, ok := localrun.CurrentVersion(meta.Stages)
	if !ok {
		return fmt.Errorf("%s has no AWSCURRENT version", meta.ARN)
	}
	targetID := *to
	if targetID == "" {
		for id, st := range meta.Stages {
			if containsStage(st, "AWSPREVIOUS") {
				targetID = id
			}
		}
		if targetID == "" {
			return &rollback.Refusal{
				Reason:  fmt.Sprintf("%s has no AWSPREVIOUS version: there is nothing to roll back to", meta.ARN),
				Instead: "name a version with -to (aws secretsmanager list-secret-version-ids --secret-id " + secret + " --include-deprecated)",
			}
		}
	}
	if targetID == currentID {
		return &rollback.Refusal{Reason: fmt.Sprintf("version %s is AWSCURRENT already", targetID)}
	}
	current, err := valueOf(ctx, em.SM, meta.ARN, currentID)
	if err != nil {
		return err
	}
	target, err := valueOf(ctx, em.SM, meta.ARN, targetID)
	if err != nil {
		if isNotFound(err) {
			return &rollback.Refusal{
				Reason:  fmt.Sprintf("%s has no version %s with a value", meta.ARN, targetID),
				Instead: "name an existing version with -to (aws secretsmanager list-secret-version-ids --secret-id " + secret + " --include-deprecated)",
			}
		}
		return err
	}
	plan, err := rollback.Make(ctx, rollback.Request{
		Secret:  meta.ARN,
		Current: rollback.Version{ID: currentID, Value: current},
		Target:  rollback.Version{ID: targetID, Value: target},
		Now:     time.Now(),
	}, iam.NewFromConfig(cfg))
	if err != nil {
		return err
	}

	var inv localrun.Invoker
	if lf.local() {
		li, stop, err := lf.invoker(ctx, c)
		if err != nil {
			return err
		}
		defer stop()
		inv = li
	} else {
		inv = &localrun.LambdaInvoker{Client: em.Lambda, Function: meta.RotationLambdaARN}
	}

	before, err := fingerprints(ctx, em.SM, meta.ARN)
	if err != nil {
		return err
	}
	token := localrun.NewToken()
	opt := localrun.Options{Token: token, Attempts: lf.attempts}
	if !*asJSON {
		fmt.Fprintf(c.stdout, "secret  %s\nkind    %s\nback to version %s (value sha256 %s)\ntoken   %s\n", meta.ARN, plan.Kind, targetID, fingerprint(target), token)
		for _, n := range plan.Notes {
			fmt.Fprintf(c.stdout, "note    %s\n", n)
		}
		fmt.Fprintln(c.stdout, "\nbefore")
		printVersions(c.stdout, before)
		fmt.Fprintln(c.stdout, "\nsteps")
		opt.Progress = progress(c.stdout)
	}
	if _, err := em.SM.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(meta.ARN), ClientRequestToken: aws.String(token),
		SecretString: aws.String(plan.Value), VersionStages: []string{"AWSPENDING"},
	}); err != nil {
		return fmt.Errorf("store the rollback value as AWSPENDING of version %s: %w (nothing changed)", token, err)
	}
	res := localrun.Result{ARN: meta.ARN, Token: token, StagesBefore: meta.Stages}
	rbErr := em.Drive(ctx, &res, inv, opt)
	after, err := fingerprints(context.WithoutCancel(ctx), em.SM, meta.ARN)
	if err != nil && rbErr == nil {
		rbErr = err
	}
	if *asJSON {
		printResultJSON(c.stdout, res, before, after, rbErr)
	} else {
		fmt.Fprintf(c.stdout, "  %-13s %9s\n\nafter\n", "rollback", res.Duration.Round(100*time.Microsecond))
		printVersions(c.stdout, after)
		for _, w := range res.Warnings {
			fmt.Fprintf(c.stdout, "\nwarning: %v\n", w)
		}
	}
	if rbErr != nil {
		if !*asJSON {
			fmt.Fprintf(c.stdout, "\nrollback FAILED: %v\nAWSCURRENT did not move. Version %s holds the rollback value as AWSPENDING, as a failed rotation leaves it: fix the cause and run `rotationctl cancel %s`.\n", rbErr, token, secret)
		}
		return errors.Join(errors.New("rollback failed"), rbErr)
	}
	if !*asJSON {
		fmt.Fprintf(c.stdout, "\nrollback succeeded: version %s (the value of %s) is AWSCURRENT\n", token, targetID)
	}
	return nil
}

func valueOf(ctx context.Context, sm *secretsmanager.Client, arn, versionID string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(versionID)})
	if err != nil {
		return "", fmt.Errorf("read version %s of %s: %w", versionID, arn, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("version %s of %s holds no string value (rotation works on SecretString only)", versionID, arn)
	}
	return *out.SecretString, nil
}
