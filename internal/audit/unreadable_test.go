package audit_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// unauthenticated is the number of calls the test makes to set the server
// up before moto starts checking identities and IAM policies.
const unauthenticated = 6

// authMoto starts a moto server of its own on 127.0.0.1 that enforces IAM
// policies after the first calls (INITIAL_NO_AUTH_ACTION_COUNT): the bed's
// emulators do not enforce IAM (LocalStack's free edition cannot).
func authMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is not on PATH (pip install 'moto[server]'): %v", err)
	}
	addr, err := localrun.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-H", host, "-p", port)
	cmd.Env = append(os.Environ(), "INITIAL_NO_AUTH_ACTION_COUNT="+strconv.Itoa(unauthenticated))
	logf, err := os.Create(filepath.Join(t.TempDir(), "moto.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	for i := 0; ; i++ {
		// The health check is no AWS call: it does not count.
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
		if i == 100 {
			t.Fatalf("moto_server did not start on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUnreadableSecretsAreFindings: the auditor may list secrets but not
// read their versions. The secret whose pending version it must date
// becomes an "unreadable" finding; the run goes on and reports the other.
func TestUnreadableSecretsAreFindings(t *testing.T) {
	url := authMoto(t)
	ctx := context.Background()
	admin, err := config.LoadDefaultConfig(ctx, config.WithBaseEndpoint(url), config.WithRetryMaxAttempts(1),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	im := iam.NewFromConfig(admin)
	sm := secretsmanager.NewFromConfig(admin)
	// The six unauthenticated calls.
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(im.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("auditor")}))
	must(im.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("auditor"), PolicyName: aws.String("list-only"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*"}]}`)}))
	key, err := im.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("auditor")})
	if err != nil {
		t.Fatal(err)
	}
	required := []smtypes.Tag{{Key: aws.String(audit.TagRequired), Value: aws.String("true")}}
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/plain"), SecretString: aws.String("v1"), Tags: required}))
	must(sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("app/pending"), SecretString: aws.String("v1"), Tags: required}))
	must(sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("app/pending"), SecretString: aws.String("v2"),
		ClientRequestToken: aws.String(localrun.NewToken()), VersionStages: []string{"AWSPENDING"}}))

	asAuditor, err := config.LoadDefaultConfig(ctx, config.WithBaseEndpoint(url), config.WithRetryMaxAttempts(1), config.WithRegion(testbed.AWSConfig(t).Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")))
	if err != nil {
		t.Fatal(err)
	}
	var logs testbed.LogBuffer
	a := audit.New(secretsmanager.NewFromConfig(asAuditor), audit.Config{StuckAfter: time.Hour, OverdueSlack: time.Hour, CertExpiry: time.Hour, AccessKeyMaxAge: time.Hour, Namespace: "SecretsRotation"},
		slog.New(slog.NewJSONHandler(&logs, nil)))
	rep, err := a.Run(ctx)
	if err != nil {
		t.Fatalf("the run failed instead of reporting: %v", err)
	}
	kinds := map[string]string{}
	for _, f := range rep.Findings {
		kinds[f.Name] += f.Kind + " "
	}
	if kinds["app/pending"] != audit.Disabled+" "+audit.Unreadable+" " || kinds["app/plain"] != audit.Disabled+" " {
		t.Errorf("findings %q", kinds)
	}
	if !strings.Contains(logs.String(), `"finding":"unreadable"`) || !strings.Contains(logs.String(), `"msg":"audit done"`) {
		t.Errorf("log:\n%s", logs.String())
	}
}
