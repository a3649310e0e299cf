// Package testbed connects tests to the local test bed that
// scripts/testbed.sh starts (`make test` does it): the AWS API emulator and
// the Lambda Runtime Interface Emulator. It reads the settings the bed wrote
// (.testbed/env) itself. It holds no fake: every call goes to the emulator.
package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

// Hint is the one command that starts the test bed (`make test` runs it).
const Hint = "run scripts/testbed.sh up"

var (
	envOnce sync.Once
	envErr  error
	reachMu sync.Mutex
	reached = map[string]error{}
)

// loadEnv sets, once per test process, the variables of .testbed/env that
// `scripts/testbed.sh up` wrote, unless AWS_ENDPOINT_URL is set already (a
// shell that sourced it, or another emulator on purpose). So `go test` needs
// no `. .testbed/env` first.
func loadEnv(t testing.TB) error {
	envOnce.Do(func() {
		if os.Getenv("AWS_ENDPOINT_URL") != "" {
			return
		}
		file := filepath.Join(ModuleRoot(t), ".testbed", "env")
		b, err := os.ReadFile(file)
		if err != nil {
			envErr = fmt.Errorf("the test bed is not running (no %s): %s", file, Hint)
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if rest, ok := strings.CutPrefix(line, "unset "); ok {
				for _, k := range strings.Fields(rest) {
					os.Unsetenv(k)
				}
				continue
			}
			if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && !strings.HasPrefix(line, "#") {
				os.Setenv(k, v)
			}
		}
	})
	return envErr
}

// reachable fails when nothing answers at endpoint (a URL), so that a test
// run against a stopped bed says what to do instead of timing out.
func reachable(endpoint string) error {
	reachMu.Lock()
	defer reachMu.Unlock()
	if err, ok := reached[endpoint]; ok {
		return err
	}
	var err error
	u, perr := url.Parse(endpoint)
	if perr != nil || u.Host == "" {
		err = fmt.Errorf("AWS_ENDPOINT_URL=%q is not a URL", endpoint)
	} else if c, derr := net.DialTimeout("tcp", u.Host, 2*time.Second); derr != nil {
		err = fmt.Errorf("the AWS API emulator does not answer at %s (%v): %s", endpoint, derr, Hint)
	} else {
		c.Close()
	}
	reached[endpoint] = err
	return err
}

// AWSConfig returns the SDK configuration for the emulator. It fails the
// test when the test bed is not running (and no AWS_ENDPOINT_URL is set),
// so that no test ever reaches real AWS by accident.
func AWSConfig(t testing.TB, optFns ...func(*config.LoadOptions) error) aws.Config {
	t.Helper()
	if err := loadEnv(t); err != nil {
		t.Fatal(err)
	}
	ep := os.Getenv("AWS_ENDPOINT_URL")
	if ep == "" {
		t.Fatalf("AWS_ENDPOINT_URL is not set: %s", Hint)
	}
	if err := reachable(ep); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), optFns...)
	if err != nil {
		t.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

// Emulator returns the emulator's clients.
func Emulator(t testing.TB) *localrun.Emulator {
	t.Helper()
	return localrun.NewEmulator(AWSConfig(t))
}

// CreateSecret creates a secret with a unique name and the given value, and
// deletes it when the test ends.
func CreateSecret(t testing.TB, em *localrun.Emulator, value string) (arn string) {
	t.Helper()
	ctx := context.Background()
	name := secretName(t.Name()) + "-" + localrun.NewToken()[:8]
	out, err := em.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
	t.Cleanup(func() {
		_, _ = em.SM.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{
			SecretId: out.ARN, ForceDeleteWithoutRecovery: aws.Bool(true),
		})
	})
	return aws.ToString(out.ARN)
}

// ValueOf reads the version id of a secret.
func ValueOf(t testing.TB, em *localrun.Emulator, arn, id string) string {
	t.Helper()
	out, err := em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(arn), VersionId: aws.String(id),
	})
	if err != nil {
		t.Fatalf("read version %s of %s: %v", id, arn, err)
	}
	return aws.ToString(out.SecretString)
}

// ValueAt reads the version of a secret that carries stage.
func ValueAt(t testing.TB, em *localrun.Emulator, arn, stage string) string {
	t.Helper()
	out, err := em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(arn), VersionStage: aws.String(stage),
	})
	if err != nil {
		t.Fatalf("read %s of %s: %v", stage, arn, err)
	}
	return aws.ToString(out.SecretString)
}

// RIEBinary returns the path of aws-lambda-rie.
func RIEBinary(t testing.TB) string {
	t.Helper()
	if err := loadEnv(t); err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("RIE_BIN")
	if bin == "" {
		t.Fatalf("RIE_BIN is not set: %s", Hint)
	}
	return bin
}

var buildMu sync.Mutex

// BuildFunction builds functions/<name> as a bootstrap for the local machine
// (the same flags as `make build`, for the host's architecture, so the
// runtime interface emulator can run it) and returns its path.
func BuildFunction(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	root := ModuleRoot(t)
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "./functions/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build functions/%s: %v\n%s", name, err, stderr.String())
	}
	return out
}

// ModuleRoot returns the directory of go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// secretName turns a test name into a valid secret name: characters other
// than letters, digits and -/_+=.@ become "-". ("!" is valid on AWS, but
// LocalStack refuses it.)
func secretName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_+=.@", r):
			return r
		}
		return '-'
	}, s)
}
