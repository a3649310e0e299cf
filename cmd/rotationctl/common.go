package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

// awsFlags are the AWS settings every subcommand takes.
type awsFlags struct{ region string }

func (a *awsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.region, "region", "", "AWS region (default: the SDK's, from AWS_REGION or the profile)")
}

func (a *awsFlags) load(ctx context.Context) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// envFlags collects repeated -env KEY=VALUE flags.
type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, ",") }

func (e *envFlags) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, v)
	return nil
}

// localFlags say how to run a rotation function locally, where Secrets
// Manager cannot invoke it (a local emulator without a Lambda runtime).
type localFlags struct {
	bootstrap, invokeURL, rie, fnLog string
	env                              envFlags
	attempts                         int
}

func (l *localFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.bootstrap, "bootstrap", "", "run this function locally under aws-lambda-rie and drive the steps: its executable, or its package directory (e.g. ./functions/generic), built for this machine")
	fs.StringVar(&l.invokeURL, "invoke-url", "", "drive the steps through this invoke URL of an already running function (instead of -bootstrap)")
	fs.StringVar(&l.rie, "rie", os.Getenv("RIE_BIN"), "aws-lambda-rie executable, for -bootstrap (default $RIE_BIN)")
	fs.StringVar(&l.fnLog, "function-log", "", "write the local function's output to this file (default: standard error)")
	fs.Var(&l.env, "env", "KEY=VALUE setting for the local function (repeatable)")
	fs.IntVar(&l.attempts, "attempts", 3, "invocations of a failing step before giving up")
}

func (l *localFlags) local() bool { return l.bootstrap != "" || l.invokeURL != "" }

// invoker starts the local function. close stops it.
func (l *localFlags) invoker(ctx context.Context, c cli) (inv localrun.Invoker, closeFn func(), err error) {
	if l.bootstrap != "" && l.invokeURL != "" {
		return nil, nil, errors.New("give -bootstrap or -invoke-url, not both")
	}
	if l.invokeURL != "" {
		return &localrun.URLInvoker{URL: l.invokeURL}, func() {}, nil
	}
	var cleanups []func()
	closeFn = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	bootstrap := l.bootstrap
	if fi, err := os.Stat(bootstrap); err == nil && fi.IsDir() {
		dir, err := os.MkdirTemp("", "rotationctl-")
		if err != nil {
			return nil, nil, err
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
		fmt.Fprintf(c.stderr, "building %s for this machine...\n", bootstrap)
		if bootstrap, err = localrun.BuildBootstrap(ctx, bootstrap, dir); err != nil {
			closeFn()
			return nil, nil, err
		}
	}
	var out io.Writer = c.stderr
	if l.fnLog != "" {
		f, err := os.Create(l.fnLog)
		if err != nil {
			closeFn()
			return nil, nil, err
		}
		cleanups = append(cleanups, func() { f.Close() })
		out = f
	}
	rie, err := localrun.StartRIE(ctx, localrun.RIEOptions{Binary: l.rie, Bootstrap: bootstrap, Env: l.env, Output: out})
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	cleanups = append(cleanups, func() { rie.Close() })
	return rie, closeFn, nil
}

// version is a labelled version, shown by a fingerprint of its value.
type version struct {
	ID          string   `json:"version_id"`
	Stages      []string `json:"stages"`
	Fingerprint string   `json:"sha256_prefix"`
}

// fingerprints lists the labelled versions of a secret with a short hash of
// each value, never the value.
func fingerprints(ctx context.Context, sm *secretsmanager.Client, id string) ([]version, error) {
	d, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", id, err)
	}
	var out []version
	for vid, st := range d.VersionIdsToStages {
		if len(st) == 0 {
			continue
		}
		v := version{ID: vid, Stages: slices.Sorted(slices.Values(st)), Fingerprint: "(no value)"}
		got, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: d.ARN, VersionId: aws.String(vid)})
		switch {
		case err == nil && got.SecretString != nil:
			v.Fingerprint = fingerprint(*got.SecretString)
		case err == nil && got.SecretBinary != nil:
			v.Fingerprint = fingerprint(string(got.SecretBinary))
		case err != nil && !isNotFound(err):
			v.Fingerprint = "(unreadable)"
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if r1, r2 := rank(out[i].Stages), rank(out[j].Stages); r1 != r2 {
			return r1 < r2
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:6])
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

func printVersions(w io.Writer, vs []version) {
	for _, v := range vs {
		fmt.Fprintf(w, "  %-36s  %-24s  value sha256 %s\n", v.ID, strings.Join(v.Stages, ","), v.Fingerprint)
	}
}

func isNotFound(err error) bool {
	var nf *smtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// pendingSince returns when the version was created, from
// ListSecretVersionIds (DescribeSecret does not date versions).
func pendingSince(ctx context.Context, sm *secretsmanager.Client, arn, versionID string) (time.Time, error) {
	p := secretsmanager.NewListSecretVersionIdsPaginator(sm, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true),
	})
	for page := 0; p.HasMorePages() && page < 5; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("list versions of %s: %w", arn, err)
		}
		for _, v := range out.Versions {
			if aws.ToString(v.VersionId) == versionID {
				return aws.ToTime(v.CreatedDate), nil
			}
		}
	}
	return time.Time{}, nil
}

// age writes a duration for people: 45s, 12m, 5h3m, 3d4h.
func age(d time.Duration) string {
	if d < 0 {
		return "-" + age(-d)
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
