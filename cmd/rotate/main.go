// Command rotate does locally what AWS Secrets Manager does when it rotates a
// secret: it opens a rotation of the secret in the AWS API emulator (the
// AWSPENDING placeholder of RotateSecret), invokes the rotation function for
// createSecret, setSecret, testSecret and finishSecret in order through the
// Lambda runtime API, retries a failed step, and prints what happened.
//
// The function is either a bootstrap, run under the AWS Lambda Runtime
// Interface Emulator (aws-lambda-rie), or any invoke URL of the Lambda API:
//
//	rotate -secret demo/api-key -bootstrap build/generic/bootstrap
//	rotate -secret demo/api-key -invoke-url http://127.0.0.1:9000/2015-03-31/functions/function/invocations
//
// AWS settings come from the environment (AWS_ENDPOINT_URL, AWS_REGION, ...).
// Values are never printed: each version is shown by a short SHA-256
// fingerprint, enough to see that the value changed.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }
func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rotate:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		secretID  = fs.String("secret", "", "name or ARN of the secret to rotate (required)")
		initValue = fs.String("init-value", "", "create the secret with this value if it does not exist")
		bootstrap = fs.String("bootstrap", "", "function executable to run under the runtime interface emulator")
		invokeURL = fs.String("invoke-url", "", "invoke URL of an already running function (instead of -bootstrap)")
		rieBin    = fs.String("rie", os.Getenv("RIE_BIN"), "aws-lambda-rie executable (default $RIE_BIN)")
		attempts  = fs.Int("attempts", 3, "invocations of a failing step before giving up")
		fnLog     = fs.String("function-log", "", "write the function's log lines to this file (default: standard error)")
		asJSON    = fs.Bool("json", false, "print the result as JSON")
		env       envFlags
	)
	fs.Var(&env, "env", "KEY=VALUE setting for the function (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secretID == "" {
		return errors.New("-secret is required")
	}
	if (*bootstrap == "") == (*invokeURL == "") {
		return errors.New("give exactly one of -bootstrap and -invoke-url")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	em := localrun.NewEmulator(cfg)
	if *initValue != "" {
		if err := ensureSecret(ctx, em.SM, *secretID, *initValue); err != nil {
			return err
		}
	}

	var inv localrun.Invoker
	if *invokeURL != "" {
		inv = &localrun.URLInvoker{URL: *invokeURL}
	} else {
		out := stderr
		if *fnLog != "" {
			f, err := os.Create(*fnLog)
			if err != nil {
				return err
			}
			defer f.Close()
			out = f
		}
		rie, err := localrun.StartRIE(ctx, localrun.RIEOptions{Binary: *rieBin, Bootstrap: *bootstrap, Env: env, Output: out})
		if err != nil {
			return err
		}
		defer rie.Close()
		inv = rie
	}

	before, err := fingerprints(ctx, em, *secretID)
	if err != nil {
		return err
	}
	res, rotErr := em.Rotate(ctx, *secretID, inv, localrun.Options{Attempts: *attempts})
	after, err := fingerprints(ctx, em, *secretID)
	if err != nil && rotErr == nil {
		rotErr = err
	}
	if *asJSON {
		printJSON(stdout, res, before, after, rotErr)
	} else {
		printText(stdout, res, before, after, rotErr)
	}
	return rotErr
}

func ensureSecret(ctx context.Context, sm *secretsmanager.Client, id, value string) error {
	_, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	var nf *smtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(id), SecretString: aws.String(value)})
		if err != nil {
			return fmt.Errorf("create secret %s: %w", id, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe secret %s: %w", id, err)
	}
	return nil
}

type version struct {
	ID          string   `json:"version_id"`
	Stages      []string `json:"stages"`
	Fingerprint string   `json:"sha256_prefix"`
}

// fingerprints lists the labelled versions of a secret with a short hash of
// each value, never the value.
func fingerprints(ctx context.Context, em *localrun.Emulator, id string) ([]version, error) {
	stages, err := em.Stages(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []version
	for vid, st := range stages {
		if len(st) == 0 {
			continue
		}
		v := version{ID: vid, Stages: slices.Sorted(slices.Values(st)), Fingerprint: "(no value)"}
		got, err := em.SM.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionId: aws.String(vid)})
		if err == nil && got.SecretString != nil {
			sum := sha256.Sum256([]byte(*got.SecretString))
			v.Fingerprint = hex.EncodeToString(sum[:6])
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return rank(out[i].Stages) < rank(out[j].Stages) })
	return out, nil
}

func rank(stages []string) int {
	switch {
	case slices.Contains(stages, "AWSCURRENT"):
		return 0
	case slices.Contains(stages, "AWSPENDING"):
		return 1
	case slices.Contains(stages, "AWSPREVIOUS"):
		return 2
	}
	return 3
}

func printText(w io.Writer, res localrun.Result, before, after []version, err error) {
	fmt.Fprintf(w, "secret  %s\ntoken   %s\n\nbefore\n", res.ARN, res.Token)
	printVersions(w, before)
	fmt.Fprintln(w, "\nsteps")
	for _, s := range res.Steps {
		status := "ok"
		if s.Err != nil {
			status = "FAILED: " + s.Err.Error()
		}
		fmt.Fprintf(w, "  %-13s %9s  attempts %d  %s\n", s.Step, s.Duration.Round(100*time.Microsecond), s.Attempts, status)
		for i, e := range s.Errors {
			if s.Err == nil || i < len(s.Errors)-1 {
				fmt.Fprintf(w, "  %-13s retried after: %v\n", "", e)
			}
		}
	}
	fmt.Fprintf(w, "  %-13s %9s\n\nafter\n", "rotation", res.Duration.Round(100*time.Microsecond))
	printVersions(w, after)
	if err != nil {
		fmt.Fprintf(w, "\nrotation FAILED: %v\n", err)
		return
	}
	fmt.Fprintln(w, "\nrotation succeeded")
}

func printVersions(w io.Writer, vs []version) {
	for _, v := range vs {
		fmt.Fprintf(w, "  %-36s  %-24s  value sha256 %s\n", v.ID, strings.Join(v.Stages, ","), v.Fingerprint)
	}
}

func printJSON(w io.Writer, res localrun.Result, before, after []version, err error) {
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
		Error      string    `json:"error,omitempty"`
	}{ARN: res.ARN, Token: res.Token, Before: before, After: after, DurationMS: ms(res.Duration)}
	for _, s := range res.Steps {
		st := step{Step: s.Step, Attempts: s.Attempts, DurationMS: ms(s.Duration)}
		if s.Err != nil {
			st.Error = s.Err.Error()
		}
		out.Steps = append(out.Steps, st)
	}
	if err != nil {
		out.Error = err.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
