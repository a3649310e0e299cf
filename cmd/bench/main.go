// Command bench measures the rotation functions the way they run in Lambda,
// under the AWS Lambda Runtime Interface Emulator against the local AWS API
// emulator, and prints a table of medians:
//
//   - cold start: wall time of the first invoke of a fresh process (the
//     emulator starts the bootstrap at the first invoke), and the runtime's
//     own INIT REPORT duration;
//   - each step and a whole rotation, warm;
//   - Secrets Manager calls per step and per rotation, counted by a proxy
//     that every Secrets Manager request of the function goes through;
//   - a warm rotation at real-AWS latency: the same proxy holds each
//     Secrets Manager request 0, 15 and 40 ms (about the round trip of a
//     call inside an AWS region), because on AWS those round trips, not
//     local CPU, decide a rotation's duration;
//   - peak resident memory of the bootstrap (VmHWM);
//   - binary and zip size of the Lambda build (build/<function>.zip).
//
// Usage: bench [-n 10] [-functions generic] [-build build/local]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type sample struct {
	coldInvoke time.Duration
	initReport time.Duration
	steps      map[string]time.Duration
	rotation   time.Duration
	calls      map[string]int
	// atDelay is the warm rotation's duration per Secrets Manager delay.
	atDelay map[time.Duration]time.Duration
	peakKB  int
}

// delays are the times the proxy holds each Secrets Manager request in the
// latency table: none (the local emulator alone), an in-region round trip,
// and a slow one.
var delays = []time.Duration{0, 15 * time.Millisecond, 40 * time.Millisecond}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	n := fs.Int("n", 10, "fresh processes per function (each gives one cold start and one warm rotation)")
	fns := fs.String("functions", "", "comma-separated functions (default: every function with a bench case)")
	localDir := fs.String("build", "build/local", "directory of the host bootstraps (make build-local)")
	lambdaDir := fs.String("lambda-build", "build", "directory of the Lambda zips (make build)")
	rieBin := fs.String("rie", os.Getenv("RIE_BIN"), "aws-lambda-rie executable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range cases {
			if !yield(k) {
				return
			}
		}
	})
	if *fns != "" {
		names = strings.Split(*fns, ",")
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	em := localrun.NewEmulator(cfg)
	b := &bed{cfg: cfg, em: em}
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return errors.New("AWS_ENDPOINT_URL is not set: source .testbed/env (make bench does)")
	}
	proxy, err := testbed.StartDelayProxy(endpoint)
	if err != nil {
		return err
	}
	defer proxy.Close()

	all := map[string][]sample{}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(stdout, "median of %d fresh processes per function (aws-lambda-rie, %s emulator)\n\n", *n, emulatorName())
	fmt.Fprintln(tw, "function\tcold start ms\tinit ms\tcreate ms\tset ms\ttest ms\tfinish ms\trotation ms\tSM calls/rotation\tpeak RSS MiB\tbinary MiB\tzip MiB\t")
	for _, name := range names {
		setup, ok := cases[name]
		if !ok {
			return fmt.Errorf("no bench case for function %q", name)
		}
		var samples []sample
		for i := range *n {
			b.secretName = "bench/" + name + "/" + localrun.NewToken()[:8]
			env, initial, err := setup(ctx, b)
			if err != nil {
				return fmt.Errorf("%s sample %d: setup: %w", name, i+1, err)
			}
			s, err := measure(ctx, em, proxy, name, b.secretName, env, initial, filepath.Join(*localDir, name, "bootstrap"), *rieBin)
			if err != nil {
				return fmt.Errorf("%s sample %d: %w", name, i+1, err)
			}
			samples = append(samples, s)
		}
		all[name] = samples
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%s\t%s\t\n", name,
			medianMS(samples, func(s sample) time.Duration { return s.coldInvoke }),
			medianMS(samples, func(s sample) time.Duration { return s.initReport }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["createSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["setSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["testSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["finishSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.rotation }),
			medianInt(samples, func(s sample) int { return total(s.calls) }),
			float64(medianInt(samples, func(s sample) int { return s.peakKB }))/1024,
			sizeMiB(filepath.Join(*lambdaDir, name, "bootstrap")),
			sizeMiB(filepath.Join(*lambdaDir, name+".zip")),
		)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return latencyTable(stdout, names, all)
}

// latencyTable prints each function's Secrets Manager calls per step and
// its warm rotation time with each delay per call.
func latencyTable(w io.Writer, names []string, all map[string][]sample) error {
	fmt.Fprintf(w, "\nwarm rotation at real-AWS latency: each Secrets Manager call held by the delay proxy (medians)\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "function\tSM calls create/set/test/finish\tper rotation\t")
	for _, d := range delays {
		fmt.Fprintf(tw, "+%d ms/call: rotation ms\t", d.Milliseconds())
	}
	fmt.Fprintln(tw)
	for _, name := range names {
		samples := all[name]
		if len(samples) == 0 {
			continue
		}
		per := make([]string, len(localrun.Steps))
		for i, step := range localrun.Steps {
			per[i] = strconv.Itoa(medianInt(samples, func(s sample) int { return s.calls[step] }))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t", name, strings.Join(per, "/"), medianInt(samples, func(s sample) int { return total(s.calls) }))
		for _, d := range delays {
			fmt.Fprintf(tw, "%.1f\t", medianMS(samples, func(s sample) time.Duration { return s.atDelay[d] }))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// measure starts a fresh function process, rotates a new secret (named
// secretName) once cold (timing the first invoke) and then warm once per
// delay (timing each step), and reads the process's peak memory. Every
// Secrets Manager request of the function goes through proxy.
func measure(ctx context.Context, em *localrun.Emulator, proxy *testbed.DelayProxy, name, secretName string, env []string, initial, bootstrap, rieBin string) (sample, error) {
	s := sample{atDelay: map[time.Duration]time.Duration{}}
	out := &testbed.LogBuffer{}
	env = append(slices.Clip(env), "AWS_ENDPOINT_URL_SECRETS_MANAGER="+proxy.URL, "AWS_LAMBDA_FUNCTION_NAME="+name+"-rotation")
	rie, err := localrun.StartRIE(ctx, localrun.RIEOptions{Binary: rieBin, Bootstrap: bootstrap, Env: env, Output: out})
	if err != nil {
		return s, err
	}
	defer rie.Close()
	created, err := em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(secretName), SecretString: aws.String(initial),
	})
	if err != nil {
		return s, err
	}
	arn := aws.ToString(created.ARN)
	defer em.SM.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: created.ARN, ForceDeleteWithoutRecovery: aws.Bool(true)})

	// Cold: the first invoke starts the bootstrap.
	proxy.SetDelay(0)
	cold, err := rotate(ctx, em, proxy, rie, arn)
	if err != nil {
		return s, fmt.Errorf("cold %w", err)
	}
	s.coldInvoke = cold.steps[localrun.Steps[0]]
	if m := initReport.FindStringSubmatch(out.String()); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		s.initReport = time.Duration(ms * float64(time.Millisecond))
	}

	// Warm: more rotations in the same process, one per delay.
	for _, d := range delays {
		proxy.SetDelay(d)
		r, err := rotate(ctx, em, proxy, rie, arn)
		if err != nil {
			return s, fmt.Errorf("warm (+%s per call) %w", d, err)
		}
		s.atDelay[d] = r.duration
		if d == 0 {
			s.steps, s.calls, s.rotation = r.steps, r.calls, r.duration
		}
	}
	proxy.SetDelay(0)
	s.peakKB, err = rie.BootstrapPeakRSS()
	return s, err
}

// rotation is what one rotation took: each step's invoke time and Secrets
// Manager calls, and the four steps together.
type rotation struct {
	steps    map[string]time.Duration
	calls    map[string]int
	duration time.Duration
}

// rotate opens a rotation of arn (directly on the emulator, as Secrets
// Manager would) and invokes its four steps, counting each step's Secrets
// Manager calls at the proxy.
func rotate(ctx context.Context, em *localrun.Emulator, proxy *testbed.DelayProxy, inv localrun.Invoker, arn string) (rotation, error) {
	r := rotation{steps: map[string]time.Duration{}, calls: map[string]int{}}
	token := localrun.NewToken()
	if _, err := em.OpenRotation(ctx, arn, token); err != nil {
		return r, fmt.Errorf("rotation: %w", err)
	}
	for _, step := range localrun.Steps {
		before := proxy.Calls()
		t := time.Now()
		if err := inv.Invoke(ctx, events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}); err != nil {
			return r, fmt.Errorf("rotation: %s: %w", step, err)
		}
		r.steps[step] = time.Since(t)
		r.duration += r.steps[step]
		r.calls[step] = int(proxy.Calls() - before)
	}
	if err := em.CloseRotation(ctx, arn, token); err != nil {
		return r, fmt.Errorf("rotation: %w", err)
	}
	return r, nil
}

func medianMS(s []sample, f func(sample) time.Duration) float64 {
	v := make([]float64, len(s))
	for i, x := range s {
		v[i] = float64(f(x).Microseconds()) / 1000
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func medianInt(s []sample, f func(sample) int) int {
	v := make([]int, len(s))
	for i, x := range s {
		v[i] = f(x)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func sizeMiB(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(fi.Size())/(1<<20))
}

func emulatorName() string {
	if e := os.Getenv("EMULATOR"); e != "" {
		return e
	}
	return os.Getenv("AWS_ENDPOINT_URL")
}
