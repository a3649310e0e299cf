package deploycheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Deployer creates and updates stacks from templates kept in an S3 bucket:
// the packaged template is larger than CloudFormation's 51,200-byte limit
// for a template passed inline.
type Deployer struct {
	C        *Clients
	Bucket   string
	Endpoint string // the emulator's URL, for TemplateURL
	// Poll is the interval between DescribeStacks calls while waiting.
	Poll time.Duration
	// Timeout bounds one create, update or delete.
	Timeout time.Duration
}

// Package runs `sam package` on a built template (sam build's output) with
// the SDK pointed at the emulator, uploading the function code to the
// bucket, and returns the packaged template.
func (d *Deployer) Package(ctx context.Context, sam, built, out string) (Template, error) {
	if _, err := d.C.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(d.Bucket)}); err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", d.Bucket, err)
	}
	cmd := exec.CommandContext(ctx, sam, "package", "--template-file", built, "--s3-bucket", d.Bucket,
		"--output-template-file", out, "--region", "us-east-1", "--no-progressbar")
	cmd.Env = append(os.Environ(), "SAM_CLI_TELEMETRY=0")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sam package %s: %w\n%s", built, err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return ParseTemplate(b)
}

// upload puts the template (as JSON) in the bucket and returns its URL.
func (d *Deployer) upload(ctx context.Context, key string, tpl Template) (string, error) {
	b, err := tpl.JSON()
	if err != nil {
		return "", err
	}
	if _, err := d.C.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
		return "", fmt.Errorf("upload template %s: %w", key, err)
	}
	return strings.TrimSuffix(d.Endpoint, "/") + "/" + d.Bucket + "/" + key, nil
}

func parameters(params map[string]string) []cfntypes.Parameter {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]cfntypes.Parameter, 0, len(keys))
	for _, k := range keys {
		out = append(out, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
	}
	return out
}

var capabilities = []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam, cfntypes.CapabilityCapabilityAutoExpand}

// Create creates the stack and waits for CREATE_COMPLETE.
func (d *Deployer) Create(ctx context.Context, name string, tpl Template, params map[string]string) error {
	u, err := d.upload(ctx, name+"-create.json", tpl)
	if err != nil {
		return err
	}
	if _, err := d.C.CFN.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName: aws.String(name), TemplateURL: aws.String(u), Parameters: parameters(params), Capabilities: capabilities,
	}); err != nil {
		return fmt.Errorf("create stack %s: %w", name, err)
	}
	return d.wait(ctx, name, "CREATE_COMPLETE")
}

// Update updates the stack and waits for UPDATE_COMPLETE.
func (d *Deployer) Update(ctx context.Context, name string, tpl Template, params map[string]string) error {
	u, err := d.upload(ctx, name+"-update.json", tpl)
	if err != nil {
		return err
	}
	if _, err := d.C.CFN.UpdateStack(ctx, &cloudformation.UpdateStackInput{
		StackName: aws.String(name), TemplateURL: aws.String(u), Parameters: parameters(params), Capabilities: capabilities,
	}); err != nil {
		return fmt.Errorf("update stack %s: %w", name, err)
	}
	return d.wait(ctx, name, "UPDATE_COMPLETE")
}

// Delete deletes the stack and waits until it is gone. (LocalStack 4.14
// fails to delete a stack whose list parameter is non-empty, for the reason
// that it cannot update one: the error comes back at once, not retried.)
func (d *Deployer) Delete(ctx context.Context, name string) error {
	if _, err := d.C.CFN.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(name)},
		func(o *cloudformation.Options) { o.RetryMaxAttempts = 1 }); err != nil {
		return fmt.Errorf("delete stack %s: %w", name, err)
	}
	return d.wait(ctx, name, "DELETE_COMPLETE")
}

// wait polls the stack's status until it is want, or a final status that
// is not, or the timeout; a failure names the resources that failed and why.
func (d *Deployer) wait(ctx context.Context, name, want string) error {
	poll, timeout := d.Poll, d.Timeout
	if poll == 0 {
		poll = 250 * time.Millisecond
	}
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		out, err := d.C.CFN.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			if want == "DELETE_COMPLETE" && strings.Contains(err.Error(), "does not exist") {
				return nil
			}
			return fmt.Errorf("stack %s: %w", name, err)
		}
		status := string(out.Stacks[0].StackStatus)
		switch {
		case status == want:
			return nil
		case !strings.HasSuffix(status, "_IN_PROGRESS"):
			return fmt.Errorf("stack %s: %s, want %s: %w", name, status, want, d.failures(ctx, name))
		case time.Now().After(deadline):
			return fmt.Errorf("stack %s: still %s after %s", name, status, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (d *Deployer) failures(ctx context.Context, name string) error {
	out, err := d.C.CFN.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(name)})
	if err != nil {
		return err
	}
	var msgs []string
	for _, e := range out.StackEvents {
		if strings.Contains(string(e.ResourceStatus), "FAILED") {
			msgs = append(msgs, fmt.Sprintf("%s %s: %s", aws.ToString(e.LogicalResourceId), e.ResourceStatus, aws.ToString(e.ResourceStatusReason)))
		}
	}
	if len(msgs) == 0 {
		return errors.New("no failed resource reported")
	}
	return errors.New(strings.Join(msgs, "; "))
}
