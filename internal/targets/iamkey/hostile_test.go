package iamkey

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The hostile-input tests of issue 9: whoever may write one IAM key secret
// names, in its userName field, a user whose keys the function must not
// make for them. Each test configures the function as a deployer would
// (environment variables, default IAM_USER_PATH) and plays the secret's
// writer; a refusal must leave the user's keys and the secret unchanged.

// hostileUser creates an IAM user at path, tagged as rotated by the secret
// named bound (no tag when bound is empty), with one access key, as an
// administrator would; it is deleted when the test ends.
func hostileUser(f *fixture, path, bound string) string {
	f.t.Helper()
	ctx := context.Background()
	name := "victim-" + strings.ReplaceAll(f.t.Name(), "/", "-")[len("TestHostile"):]
	if len(name) > 56 {
		name = name[:56]
	}
	in := &iam.CreateUserInput{UserName: aws.String(name), Path: aws.String(path)}
	if bound != "" {
		in.Tags = []iamtypes.Tag{{Key: aws.String("secrets-rotation:secret"), Value: aws.String(bound)}}
	}
	if _, err := f.iam.CreateUser(ctx, in); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() {
		out, _ := f.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(name)})
		if out != nil {
			for _, k := range out.AccessKeyMetadata {
				_, _ = f.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(name), AccessKeyId: k.AccessKeyId})
			}
		}
		_, _ = f.iam.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(name)})
	})
	f.newKey(name)
	return name
}

// hostileDefaults configures f's target from an environment that sets
// nothing but a short test timeout.
func hostileDefaults(f *fixture) {
	f.t.Helper()
	c, err := ConfigFromEnv(func(k string) string { return map[string]string{"TEST_TIMEOUT": "3s"}[k] })
	if err != nil {
		f.t.Fatal(err)
	}
	f.tc = c
}

// TestHostileUserPathRootWithoutOptIn: IAM_USER_PATH=/ is every user of the
// account, administrators included; the function refuses it unless told
// IAM_ALLOW_ALL_USERS=true.
func TestHostileUserPathRootWithoutOptIn(t *testing.T) {
	_, err := ConfigFromEnv(func(k string) string { return map[string]string{"IAM_USER_PATH": "/"}[k] })
	if err == nil || !strings.Contains(err.Error(), "IAM_ALLOW_ALL_USERS") {
		t.Fatalf("IAM_USER_PATH=/ without the opt-in: %v, want a refusal naming IAM_ALLOW_ALL_USERS", err)
	}
}

// TestHostileUserOutsidePath: a secret names an administrator at path "/"
// (even one tagged for it): no key may be made for it.
func TestHostileUserOutsidePath(t *testing.T) {
	f := newFixture(t)
	hostileDefaults(f)
	arn := testbed.CreateSecret(t, f.em, `{}`)
	admin := hostileUser(f, "/", arn)
	arn2 := testbed.CreateSecret(t, f.em, `{"userName":"`+admin+`"}`)
	if _, err := f.iam.TagUser(context.Background(), &iam.TagUserInput{UserName: aws.String(admin),
		Tags: []iamtypes.Tag{{Key: aws.String("secrets-rotation:secret"), Value: aws.String(arn2)}}}); err != nil {
		t.Fatal(err)
	}
	f.refusedCreate(arn2, admin, `field "userName" of the secret names IAM user `+admin+", whose path / is not under IAM_USER_PATH")
}

// TestHostileUserOfAnotherSecret: the writer of secret A names user B, which
// is under the allowed path but belongs to secret B. The function must not
// make a key for B and hand it to A's writer.
func TestHostileUserOfAnotherSecret(t *testing.T) {
	f := newFixture(t)
	hostileDefaults(f)
	secretB := testbed.CreateSecret(t, f.em, `{}`)
	userB := hostileUser(f, "/secrets-rotation/", secretB)
	secretA := testbed.CreateSecret(t, f.em, `{"userName":"`+userB+`"}`)
	f.refusedCreate(secretA, userB, `field "userName" of the secret names IAM user `+userB+", which has secrets-rotation:secret="+secretB)
}

// TestHostileUnboundUser: a user under the path that no secret was bound to
// (no tag) is refused too: the tag, set by whoever administers IAM, is what
// says which secret may manage a user.
func TestHostileUnboundUser(t *testing.T) {
	f := newFixture(t)
	hostileDefaults(f)
	user := hostileUser(f, "/secrets-rotation/", "")
	arn := testbed.CreateSecret(t, f.em, `{"userName":"`+user+`"}`)
	f.refusedCreate(arn, user, `field "userName" of the secret names IAM user `+user+", which has no tag secrets-rotation:secret")
}
