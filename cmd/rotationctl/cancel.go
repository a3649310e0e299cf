package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

// KeptLabel marks the version of a cancelled rotation. A version that loses
// its last label is deprecated (AWS deletes the oldest of them; LocalStack
// deletes it at once), so the cancelled version keeps this one: its value,
// which the target may already accept (a database password set by
// setSecret), stays readable. The next cancel moves it to its own version.
const KeptLabel = "ROTATION-CANCELLED"

// mayBeRunning is the age under which a rotation may still be running: a
// Lambda function runs at most 15 minutes, and Secrets Manager invokes the
// next step right after the previous one.
const mayBeRunning = 15 * time.Minute

const cancelAbout = `Ends the rotation in progress of SECRET: removes AWSPENDING from the
version that carries it without AWSCURRENT, so that the next RotateSecret
starts afresh. No value is deleted: the cancelled version keeps the label
` + KeptLabel + `, and AWSCURRENT does not move.

When the rotation is younger than 15 minutes (a step may still be running,
or Secrets Manager may invoke the next one), it first calls
CancelRotateSecret, which stops Secrets Manager and turns automatic rotation
off; it says so, and how to turn it on again. -disable does that whatever the
age; -keep-enabled never does. With no rotation in progress it says so and
changes nothing.`

func runCancel(ctx context.Context, c cli, args []string) error {
	fs := newFlags(c, "cancel", "SECRET [flags]", cancelAbout)
	var af awsFlags
	af.register(fs)
	disable := fs.Bool("disable", false, "also turn automatic rotation off (CancelRotateSecret), whatever the rotation's age")
	keep := fs.Bool("keep-enabled", false, "never call CancelRotateSecret (you know no step is running: a local run failed)")
	secret, err := oneSecret(fs, args)
	if err != nil {
		return err
	}
	if *disable && *keep {
		return errors.New("give -disable or -keep-enabled, not both")
	}
	cfg, err := af.load(ctx)
	if err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(cfg)
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		return fmt.Errorf("describe %s: %w", secret, err)
	}
	meta := audit.FromDescribe(d)
	current, _ := localrun.CurrentVersion(meta.Stages)
	pending, open := meta.PendingVersion()
	fmt.Fprintf(c.stdout, "secret  %s\n", meta.ARN)
	if !open {
		fmt.Fprintf(c.stdout, "no rotation in progress: no version other than AWSCURRENT (%s) carries AWSPENDING. Nothing changed.\n", current)
		return nil
	}
	since, err := pendingSince(ctx, sm, meta.ARN, pending)
	if err != nil {
		return err
	}
	ageText := "of unknown age"
	if !since.IsZero() {
		ageText = fmt.Sprintf("opened %s UTC, %s ago", day(since), age(time.Since(since)))
	}
	fmt.Fprintf(c.stdout, "rotation in progress: version %s carries AWSPENDING (%s)\n", pending, ageText)

	young := since.IsZero() || time.Since(since) < mayBeRunning
	stop := meta.Enabled() && !*keep && (*disable || young)
	var changed []string
	if stop {
		if _, err := sm.CancelRotateSecret(ctx, &secretsmanager.CancelRotateSecretInput{SecretId: aws.String(meta.ARN)}); err != nil {
			return fmt.Errorf("CancelRotateSecret %s: %w (nothing changed)", meta.ARN, err)
		}
		why := "as asked (-disable)"
		if !*disable {
			why = "because the rotation is recent and a step may still be running"
		}
		changed = append(changed, fmt.Sprintf("CancelRotateSecret, %s: Secrets Manager invokes no further step, and automatic rotation is now OFF. Turn it on again with `rotationctl rotate %s` (rotates at once) or `aws secretsmanager rotate-secret --secret-id %s` once the cause is fixed", why, secret, secret))
	}
	// Label first, then unlabel: at no moment is the version without a label.
	if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(meta.ARN), VersionStage: aws.String(KeptLabel), MoveToVersionId: aws.String(pending),
	}); err != nil {
		return fmt.Errorf("label version %s %s: %w (changed so far: %v)", pending, KeptLabel, err, changed)
	}
	changed = append(changed, fmt.Sprintf("labelled version %s %s, so that its value is kept", pending, KeptLabel))
	if _, err := sm.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(meta.ARN), VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(pending),
	}); err != nil {
		// The request may have taken effect before its answer was lost.
		if again, rerr := localrun.NewEmulator(cfg).Stages(ctx, meta.ARN); rerr != nil || containsStage(again[pending], "AWSPENDING") {
			return fmt.Errorf("remove AWSPENDING from %s: %w (changed so far: %v)", pending, err, changed)
		}
	}
	changed = append(changed, fmt.Sprintf("removed AWSPENDING from version %s", pending))

	after, err := localrun.NewEmulator(cfg).Stages(context.WithoutCancel(ctx), meta.ARN)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "changed:")
	for _, s := range changed {
		fmt.Fprintf(c.stdout, "  - %s\n", s)
	}
	nowCurrent, _ := localrun.CurrentVersion(after)
	fmt.Fprintf(c.stdout, "AWSCURRENT is version %s, as before: nothing was rolled back and no value was deleted.\n", nowCurrent)
	then := ""
	if stop {
		then = "turn rotation on again, then "
	}
	fmt.Fprintf(c.stdout, "If setSecret had already run, the target may accept only the cancelled value (a single-user database password):\n"+
		"the database functions find it on their next rotation, or %smake it current with `rotationctl rollback %s -to %s`.\n", then, secret, pending)
	return nil
}

func containsStage(stages []string, s string) bool {
	for _, x := range stages {
		if x == s {
			return true
		}
	}
	return false
}
