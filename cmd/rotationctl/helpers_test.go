package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func runtimeArch() string { return runtime.GOARCH }

// buildFor builds functions/generic for linux/arch into out.
func buildFor(t *testing.T, arch, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", out, "./functions/generic")
	cmd.Dir = testbed.ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build for %s: %v\n%s", arch, err, b)
	}
}

func mapsEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := slices.Clone(b[k])
		v = slices.Clone(v)
		slices.Sort(v)
		slices.Sort(w)
		if !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

func smTag(k, v string) smtypes.Tag { return smtypes.Tag{Key: aws.String(k), Value: aws.String(v)} }

// logsClient is a CloudWatch Logs client of the test bed (its moto).
func logsClient(t *testing.T) *cloudwatchlogs.Client {
	t.Helper()
	cfg := testbed.AWSConfig(t)
	return cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) { o.BaseEndpoint = aws.String(testbed.MotoURL(t)) })
}

// shipLog does what Lambda does with a function's output: it sends each
// JSON line of the file to a log stream of the function's log group.
func shipLog(t *testing.T, group, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "{") {
			lines = append(lines, l)
		}
	}
	shipLines(t, group, lines)
}

func shipLines(t *testing.T, group string, lines []string) {
	t.Helper()
	if len(lines) == 0 {
		return
	}
	ctx := context.Background()
	lc := logsClient(t)
	if _, err := lc.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
		var exists *cwltypes.ResourceAlreadyExistsException
		if !errors.As(err, &exists) {
			t.Fatal(err)
		}
	}
	stream := filepath.Base(t.Name()) + "-" + localrun.NewToken()[:8]
	if _, err := lc.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	var evs []cwltypes.InputLogEvent
	for _, l := range lines {
		evs = append(evs, cwltypes.InputLogEvent{Message: aws.String(l), Timestamp: aws.Int64(now)})
	}
	if _, err := lc.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: evs}); err != nil {
		t.Fatal(err)
	}
}

func decodeSegment(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
