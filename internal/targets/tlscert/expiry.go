package tlscert

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secrets-rotation/secrets-rotation/internal/audit"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

var _ rotation.Finisher = (*Target)(nil)

// tagger is the Secrets Manager call Finish makes.
type tagger interface {
	TagResource(context.Context, *secretsmanager.TagResourceInput, ...func(*secretsmanager.Options)) (*secretsmanager.TagResourceOutput, error)
}

// recordExpiry records on the secret, as the tag secrets-rotation:cert-not-after,
// when the certificate that just became current expires, so that the
// rotation auditor can warn before it does without reading the secret (a
// tag is metadata: ListSecrets returns it). Tagging again with the same
// value changes nothing, so a rerun of the hook is harmless.
func (t *Target) recordExpiry(ctx context.Context, req *rotation.StepRequest) error {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	s, err := parseSecret(pv.Value)
	if err != nil {
		return fmt.Errorf("new current version: %w", err)
	}
	certs, err := parseCerts("new current certificate", s.Certificate)
	if err != nil {
		return err
	}
	if len(certs) == 0 {
		return fmt.Errorf("new current version holds no certificate")
	}
	notAfter := certs[0].NotAfter.UTC().Format(time.RFC3339)
	if _, err := t.tags.TagResource(ctx, &secretsmanager.TagResourceInput{
		SecretId: aws.String(req.Secret.ARN),
		Tags:     []smtypes.Tag{{Key: aws.String(audit.TagCertNotAfter), Value: aws.String(notAfter)}},
	}); err != nil {
		return fmt.Errorf("tag %s=%s on %s: %w", audit.TagCertNotAfter, notAfter, req.Secret.ARN, err)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "certificate expiry recorded for the auditor",
		slog.String("tag", audit.TagCertNotAfter), slog.String("not_after", notAfter))
	return nil
}
