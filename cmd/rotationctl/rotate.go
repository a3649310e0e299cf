package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

const rotateAbout = `Rotates SECRET now.

Without -bootstrap or -invoke-url it asks Secrets Manager to rotate
(RotateSecret, with the secret's own rotation function) and follows the
rotation to its end: the labels, and each step from the function's log when
it is readable (logs:FilterLogEvents on the function's log group).

With -bootstrap or -invoke-url it runs the function locally, for a test bed
whose emulator cannot run Lambda functions: it opens the rotation as
RotateSecret does (a secret without a rotation function gets the stand-in
function ` + localrun.StandInName + `, which never runs), invokes the four
steps itself, retrying a failed step, and reads the labels again before it
reports. -bootstrap takes the function's executable or its package directory,
which is built for this machine; a function that cannot start is reported
with the reason the runtime interface emulator gives.`

func runRotate(ctx context.Context, c cli, args []string) error {
	fs := newFlags(c, "rotate", "SECRET [flags]", rotateAbout)
	var (
		af        awsFlags
		lf        localFlags
		initValue = fs.String("init-value", "", "create the secret with this value if it does not exist (local runs and demos)")
		timeout   = fs.Duration("timeout", 10*time.Minute, "how long to follow a rotation that Secrets Manager runs")
		poll      = fs.Duration("poll", time.Second, "how often to read the labels and the log while following")
		asJSON    = fs.Bool("json", false, "print the result as JSON")
	)
	af.register(fs)
	lf.register(fs)
	secret, err := oneSecret(fs, args)
	if err != nil {
		return err
	}
	cfg, err := af.load(ctx)
	if err != nil {
		return err
	}
	em := localrun.NewEmulator(cfg)
	if *initValue != "" {
		if err := ensureSecret(ctx, em.SM, secret, *initValue); err != nil {
			return err
		}
	}
	if lf.local() {
		return rotateLocally(ctx, c, em, secret, &lf, *asJSON)
	}
	return rotateWithSecretsManager(ctx, c, em, cloudwatchlogs.NewFromConfig(cfg), secret, *timeout, *poll, *asJSON)
}

func ensureSecret(ctx context.Context, sm *secretsmanager.Client, id, value string) error {
	_, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if isNotFound(err) {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(value)}); err != nil {
			return fmt.Errorf("create secret %s: %w", id, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe secret %s: %w", id, err)
	}
	return nil
}

// progress prints each invocation of a step as it ends.
func progress(w io.Writer) func(localrun.Attempt) {
	return func(a localrun.Attempt) {
		if a.Err == nil {
			fmt.Fprintf(w, "  %-13s %9s  attempt %d  ok\n", a.Step, a.Duration.Round(100*time.Microsecond), a.Number)
			return
		}
		fmt.Fprintf(w, "  %-13s %9s  attempt %d of %d FAILED: %v\n", a.Step, a.Duration.Round(100*time.Microsecond), a.Number, a.Of, a.Err)
	}
}

func rotateLocally(ctx context.Context, c cli, em *localrun.Emulator, secret string, lf *localFlags, asJSON bool) error {
	inv, stop, err := lf.invoker(ctx, c)
	if err != nil {
		return err
	}
	defer stop()
	before, err := fingerprints(ctx, em.SM, secret)
	if err != nil {
		return err
	}
	token := localrun.NewToken()
	opt := localrun.Options{Token: token, Attempts: lf.attempts}
	if !asJSON {
		fmt.Fprintf(c.stdout, "secret  %s\ntoken   %s\n\nbefore\n", secret, token)
		printVersions(c.stdout, before)
		fmt.Fprintln(c.stdout, "\nsteps")
		opt.Progress = progress(c.stdout)
	}
	res, rotErr := em.Rotate(ctx, secret, inv, opt)
	// Read again whatever happened: the report says where the secret
	// stands, not what a step answered.
	after, err := fingerprints(context.WithoutCancel(ctx), em.SM, secret)
	if err != nil && rotErr == nil {
		rotErr = err
	}
	if asJSON {
		printResultJSON(c.stdout, res, before, after, rotErr)
	} else {
		printResultText(c.stdout, res, after, rotErr, secret)
	}
	return rotErr
}

func printResultText(w io.Writer, res localrun.Result, after []version, err error, secret string) {
	fmt.Fprintf(w, "  %-13s %9s\n\nafter\n", "rotation", res.Duration.Round(100*time.Microsecond))
	printVersions(w, after)
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "\nwarning: %v\n", warn)
	}
	if err != nil {
		fmt.Fprintf(w, "\nrotation FAILED: %v\n", err)
		if _, open := localrun.PendingVersion(res.StagesAfter); open {
			fmt.Fprintf(w, "AWSCURRENT did not move. The rotation is still open (version %s carries AWSPENDING): fix the cause and run `rotationctl cancel %s` before rotating again.\n", res.Token, secret)
		}
		return
	}
	fmt.Fprintln(w, "\nrotation succeeded")
}

func printResultJSON(w io.Writer, res localrun.Result, before, after []version, err error) {
	type step struct {
		Step       string  `json:"step"`
		Attempts   int     `json:"attempts"`
		DurationMS float64 `json:"duration_ms"`
		Error      string  `json:"error,omitempty"`
	}
	out := struct {
		ARN        string    `json:"secret_arn"`
		Token      string    `json:"token"`
		Before     []version `json:"before"`
		Steps      []step    `json:"steps"`
		DurationMS float64   `json:"duration_ms"`
		After      []version `json:"after"`
		Finished   bool      `json:"finished"`
		Warnings   []string  `json:"warnings,omitempty"`
		Error      string    `json:"error,omitempty"`
	}{ARN: res.ARN, Token: res.Token, Before: before, After: after, DurationMS: ms(res.Duration), Finished: res.Finished, Steps: []step{}}
	for _, s := range res.Steps {
		st := step{Step: s.Step, Attempts: s.Attempts, DurationMS: ms(s.Duration)}
		if s.Err != nil {
			st.Error = s.Err.Error()
		}
		out.Steps = append(out.Steps, st)
	}
	for _, w := range res.Warnings {
		out.Warnings = append(out.Warnings, w.Error())
	}
	if err != nil {
		out.Error = err.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

// rotateWithSecretsManager asks Secrets Manager to rotate and follows the
// rotation until the new version is AWSCURRENT, rotation is turned off, or
// the timeout.
func rotateWithSecretsManager(ctx context.Context, c cli, em *localrun.Emulator, logs *cloudwatchlogs.Client, secret string, timeout, poll time.Duration, asJSON bool) error {
	d, err := em.SM.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(secret)})
	if err != nil {
		return fmt.Errorf("describe %s: %w", secret, err)
	}
	meta := audit.FromDescribe(d)
	if id, open := meta.PendingVersion(); open {
		return fmt.Errorf("%s: %w: version %s carries AWSPENDING; let it finish, or end it with `rotationctl cancel %s`", meta.ARN, localrun.ErrRotationInProgress, id, secret)
	}
	if meta.RotationLambdaARN == "" {
		return fmt.Errorf("%s has no rotation function: attach one (aws secretsmanager rotate-secret --secret-id %s --rotation-lambda-arn ARN --rotation-rules ...), or run one locally with -bootstrap", meta.ARN, secret)
	}
	token := localrun.NewToken()
	w := c.stdout
	if asJSON {
		w = io.Discard
	}
	fmt.Fprintf(w, "secret    %s\nfunction  %s\ntoken     %s\n\n", meta.ARN, meta.RotationLambdaARN, token)
	start := time.Now()
	if _, err := em.SM.RotateSecret(ctx, &secretsmanager.RotateSecretInput{
		SecretId: aws.String(meta.ARN), ClientRequestToken: aws.String(token),
		RotationLambdaARN: aws.String(meta.RotationLambdaARN), RotateImmediately: aws.Bool(true),
	}); err != nil {
		return fmt.Errorf("RotateSecret %s: %w", meta.ARN, err)
	}
	fmt.Fprintf(w, "%s  RotateSecret accepted: Secrets Manager invokes %s\n", clock(time.Now()), meta.FunctionName())
	f := &follower{sm: em.SM, logs: logs, lambda: em.Lambda, arn: meta.ARN, token: token, function: meta.RotationLambdaARN, out: w, start: start}
	res := f.run(ctx, timeout, poll)
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	}
	if res.Error != "" {
		return errors.New(res.Error)
	}
	fmt.Fprintf(w, "\nrotation succeeded in %s\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// follower watches one rotation that Secrets Manager runs.
type follower struct {
	sm       *secretsmanager.Client
	logs     *cloudwatchlogs.Client
	lambda   *lambda.Client
	arn      string
	token    string
	function string
	out      io.Writer
	start    time.Time

	logGroup  string
	logsErr   error
	seen      map[string]bool
	stages    []string
	failures  []string
	stepLines []stepLine
}

// stepLine is one step's log line, as the engine writes it.
type stepLine struct {
	Time       string  `json:"time"`
	Msg        string  `json:"msg"`
	Step       string  `json:"step"`
	VersionID  string  `json:"version_id"`
	SecretARN  string  `json:"secret_arn"`
	Action     string  `json:"action"`
	Outcome    string  `json:"outcome"`
	DurationMS float64 `json:"duration_ms"`
	Error      string  `json:"error,omitempty"`
}

// followResult is the JSON form of a followed rotation.
type followResult struct {
	ARN      string     `json:"secret_arn"`
	Token    string     `json:"token"`
	Finished bool       `json:"finished"`
	Stages   []string   `json:"stages"`
	Steps    []stepLine `json:"steps"`
	LogsNote string     `json:"logs_note,omitempty"`
	Error    string     `json:"error,omitempty"`
}

func (f *follower) run(ctx context.Context, timeout, poll time.Duration) followResult {
	f.seen = map[string]bool{}
	f.logGroup, f.logsErr = logGroupOf(ctx, f.lambda, f.function)
	if f.logsErr != nil {
		fmt.Fprintf(f.out, "%s  the function's log is not readable (%v): following the labels only\n", clock(time.Now()), f.logsErr)
	}
	deadline := time.Now().Add(timeout)
	res := followResult{ARN: f.arn, Token: f.token}
	for {
		done, err := f.once(ctx)
		res.Stages, res.Steps = f.stages, f.stepLines
		if f.logsErr != nil {
			res.LogsNote = f.logsErr.Error()
		}
		if done {
			// The log reaches CloudWatch a moment after the labels move:
			// wait a little for the last step's line.
			for wait := time.Now().Add(5 * time.Second); f.logsErr == nil && !f.has("finishSecret") && time.Now().Before(wait); {
				time.Sleep(poll)
				f.readLog(ctx)
			}
			res.Steps = f.stepLines
			res.Finished = true
			return res
		}
		if err != nil {
			res.Error = err.Error()
			return res
		}
		if time.Now().After(deadline) {
			res.Error = fmt.Sprintf("the rotation did not finish within %s: version %s has stages %v", timeout, f.token, f.stages)
			if len(f.failures) > 0 {
				res.Error += "; last failure: " + f.failures[len(f.failures)-1]
			}
			res.Error += fmt.Sprintf("; Secrets Manager may still retry it. End it with `rotationctl cancel %s`", f.arn)
			return res
		}
		select {
		case <-ctx.Done():
			res.Error = fmt.Sprintf("stopped following (%v): the rotation goes on without us; version %s has stages %v", ctx.Err(), f.token, f.stages)
			return res
		case <-time.After(poll):
		}
	}
}

// once reads the labels and the new log lines; done is true when the
// token's version is AWSCURRENT.
func (f *follower) once(ctx context.Context) (done bool, err error) {
	if f.logsErr == nil {
		f.readLog(ctx)
	}
	d, err := f.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(f.arn)})
	if err != nil {
		return false, fmt.Errorf("describe %s: %w", f.arn, err)
	}
	st := slices.Sorted(slices.Values(d.VersionIdsToStages[f.token]))
	if !slices.Equal(st, f.stages) {
		f.stages = st
		label := strings.Join(st, ",")
		if label == "" {
			label = "no label"
		}
		fmt.Fprintf(f.out, "%s  version %s: %s\n", clock(time.Now()), f.token, label)
	}
	if slices.Contains(st, "AWSCURRENT") {
		return true, nil
	}
	if d.RotationEnabled != nil && !*d.RotationEnabled {
		return false, fmt.Errorf("rotation of %s was turned off (CancelRotateSecret) before it finished", f.arn)
	}
	return false, nil
}

// has reports whether the log showed step succeed.
func (f *follower) has(step string) bool {
	for _, l := range f.stepLines {
		if l.Step == step && l.Outcome != "failure" {
			return true
		}
	}
	return false
}

// readLog prints the function's new log lines of this rotation.
func (f *follower) readLog(ctx context.Context) {
	p := cloudwatchlogs.NewFilterLogEventsPaginator(f.logs, &cloudwatchlogs.FilterLogEventsInput{
		LogGroupName:  aws.String(f.logGroup),
		StartTime:     aws.Int64(f.start.Add(-time.Minute).UnixMilli()),
		FilterPattern: aws.String(`"` + f.token + `"`),
	})
	for page := 0; p.HasMorePages() && page < 10; page++ {
		out, err := p.NextPage(ctx)
		var missing *cwltypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			// Lambda makes the log group when the function first logs,
			// which may be after the rotation opened: no lines yet.
			return
		}
		if err != nil {
			f.logsErr = err
			fmt.Fprintf(f.out, "%s  the function's log %s is not readable (%v): following the labels only\n", clock(time.Now()), f.logGroup, err)
			return
		}
		for _, ev := range out.Events {
			id := aws.ToString(ev.EventId)
			if f.seen[id] {
				continue
			}
			f.seen[id] = true
			var l stepLine
			if json.Unmarshal([]byte(aws.ToString(ev.Message)), &l) != nil || l.VersionID != f.token || !strings.HasPrefix(l.Msg, "rotation step") {
				continue
			}
			f.stepLines = append(f.stepLines, l)
			when := time.UnixMilli(aws.ToInt64(ev.Timestamp))
			if l.Outcome == "failure" {
				f.failures = append(f.failures, l.Error)
				fmt.Fprintf(f.out, "%s  %-13s FAILED %8.1fms  %s\n", clock(when), l.Step, l.DurationMS, l.Error)
				continue
			}
			fmt.Fprintf(f.out, "%s  %-13s ok     %8.1fms  %s\n", clock(when), l.Step, l.DurationMS, l.Action)
		}
	}
}

// logGroupOf returns the log group of a Lambda function: the one its
// logging configuration names, else /aws/lambda/<name>.
func logGroupOf(ctx context.Context, lc *lambda.Client, function string) (string, error) {
	out, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(function)})
	if err != nil {
		return "", fmt.Errorf("get configuration of %s: %w", function, err)
	}
	if out.LoggingConfig != nil && aws.ToString(out.LoggingConfig.LogGroup) != "" {
		return aws.ToString(out.LoggingConfig.LogGroup), nil
	}
	return "/aws/lambda/" + aws.ToString(out.FunctionName), nil
}

func clock(t time.Time) string { return t.UTC().Format("15:04:05") }
