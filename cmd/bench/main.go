// Command bench measures the rotation functions the way they run in Lambda,
// under the AWS Lambda Runtime Interface Emulator against the local AWS API
// emulator, and prints a table of medians:
//
//   - cold start: wall time of the first invoke of a fresh process (the
//     emulator starts the bootstrap at the first invoke), and the runtime's
//     own INIT REPORT duration;
//   - each step and a whole rotation, warm;
//   - Secrets Manager calls per rotation, from the functions' log lines;
//   - peak resident memory of the bootstrap (VmHWM);
//   - binary and zip size of the Lambda build (build/<function>.zip).
//
// Usage: bench [-n 10] [-functions generic] [-build build/local]
package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	calls      int
	peakKB     int
}

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
			s, err := measure(ctx, em, b.secretName, env, initial, filepath.Join(*localDir, name, "bootstrap"), *rieBin)
			if err != nil {
				return fmt.Errorf("%s sample %d: %w", name, i+1, err)
			}
			samples = append(samples, s)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%s\t%s\t\n", name,
			medianMS(samples, func(s sample) time.Duration { return s.coldInvoke }),
			medianMS(samples, func(s sample) time.Duration { return s.initReport }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["createSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["setSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["testSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.steps["finishSecret"] }),
			medianMS(samples, func(s sample) time.Duration { return s.rotation }),
			medianInt(samples, func(s sample) int { return s.calls }),
			float64(medianInt(samples, func(s sample) int { return s.peakKB }))/1024,
			sizeMiB(filepath.Join(*lambdaDir, name, "bootstrap")),
			sizeMiB(filepath.Join(*lambdaDir, name+".zip")),
		)
	}
	return tw.Flush()
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// measure starts a fresh function process, rotates a new secret (named
// secretName) once cold (timing the first invoke) and once warm (timing each
// step), and reads the process's peak memory.
func measure(ctx context.Context, em *localrun.Emulator, secretName string, env []string, initial, bootstrap, rieBin string) (sample, error) {
	s := sample{steps: map[string]time.Duration{}}
	out := &testbed.LogBuffer{}
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
	token := localrun.NewToken()
	if _, err := em.OpenRotation(ctx, arn, token); err != nil {
		return s, err
	}
	for i, step := range localrun.Steps {
		t := time.Now()
		if err := rie.Invoke(ctx, events.SecretsManagerSecretRotationEvent{Step: step, SecretID: arn, ClientRequestToken: token}); err != nil {
			return s, fmt.Errorf("cold %s: %w", step, err)
		}
		if i == 0 {
			s.coldInvoke = time.Since(t)
		}
	}
	if err := em.CloseRotation(ctx, arn, token); err != nil {
		return s, err
	}
	if m := initReport.FindStringSubmatch(out.String()); m != nil {
		ms, _ := strconv.ParseFloat(m[1], 64)
		s.initReport = time.Duration(ms * float64(time.Millisecond))
	}

	// Warm: a second rotation in the same process.
	logStart := len(out.String())
	res, err := em.Rotate(ctx, arn, rie, localrun.Options{Attempts: 1})
	if err != nil {
		return s, fmt.Errorf("warm rotation: %w", err)
	}
	s.rotation = res.Duration
	for _, st := range res.Steps {
		s.steps[st.Step] = st.Duration
	}
	s.calls = countCalls(out.String()[logStart:])
	s.peakKB, err = rie.BootstrapPeakRSS()
	return s, err
}

// countCalls adds up the secretsmanager_calls of the function's step lines.
func countCalls(logs string) int {
	total := 0
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg   string `json:"msg"`
			Calls int    `json:"secretsmanager_calls"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && strings.HasPrefix(rec.Msg, "rotation step") {
			total += rec.Calls
		}
	}
	return total
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
