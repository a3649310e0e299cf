package iamkey

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// recordKeyCreated records on the secret, as the tag
// secrets-rotation:key-created, when IAM created the access key that just
// became current, so that the rotation auditor can warn about an old key
// without reading the secret. Tagging again with the same value changes
// nothing, so a rerun of finishSecret's hook is harmless.
func (t *Target) recordKeyCreated(ctx context.Context, req *rotation.StepRequest) error {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	s, err := parseSecret(pv.Value)
	if err != nil {
		return fmt.Errorf("new current version: %w", err)
	}
	out, err := t.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(s.UserName)})
	if err != nil {
		return fmt.Errorf("list access keys of IAM user %s: %w", s.UserName, err)
	}
	var created time.Time
	for _, k := range out.AccessKeyMetadata {
		if aws.ToString(k.AccessKeyId) == s.AccessKeyID {
			created = aws.ToTime(k.CreateDate)
		}
	}
	if created.IsZero() {
		return fmt.Errorf("access key %s is not a key of IAM user %s: its age cannot be recorded", s.AccessKeyID, s.UserName)
	}
	value := created.UTC().Format(time.RFC3339)
	if _, err := secretsmanager.NewFromConfig(t.awsCfg).TagResource(ctx, &secretsmanager.TagResourceInput{
		SecretId: aws.String(req.Secret.ARN),
		Tags:     []smtypes.Tag{{Key: aws.String(audit.TagKeyCreated), Value: aws.String(value)}},
	}); err != nil {
		return fmt.Errorf("tag %s=%s on %s: %w", audit.TagKeyCreated, value, req.Secret.ARN, err)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "access key creation recorded for the auditor",
		slog.String("tag", audit.TagKeyCreated), slog.String("access_key_id", s.AccessKeyID), slog.String("key_created", value))
	return nil
}
