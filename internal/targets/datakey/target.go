package datakey

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/secrets-rotation/secrets-rotation/internal/grace"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

// KMSAPI is the part of the KMS client the target uses; *kms.Client
// satisfies it.
type KMSAPI interface {
	DescribeKey(context.Context, *kms.DescribeKeyInput, ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
	GetKeyRotationStatus(context.Context, *kms.GetKeyRotationStatusInput, ...func(*kms.Options)) (*kms.GetKeyRotationStatusOutput, error)
	EnableKeyRotation(context.Context, *kms.EnableKeyRotationInput, ...func(*kms.Options)) (*kms.EnableKeyRotationOutput, error)
}

// The encryption context keys that bind a data key to its secret version.
// Keys beginning with "aws" are reserved by AWS, hence these names.
const (
	ContextSecretARN = "SecretARN"
	ContextVersionID = "SecretVersionId"
)

// ErrBadKMSKey reports a KMS key that cannot generate data keys.
var ErrBadKMSKey = errors.New("unusable KMS key")

// Target rotates data-key secrets.
type Target struct {
	cfg Config
	kms KMSAPI
}

var _ rotation.Target = (*Target)(nil)

// New returns a Target that calls KMS through api.
func New(cfg Config, api KMSAPI) *Target { return &Target{cfg: cfg, kms: api} }

// Create generates a new data key and carries the current key, and the
// retired keys still within the grace period, into the new version. Nothing
// outside Secrets Manager is created: a data key that a crash leaves unstored
// is simply never used.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	cur, err := keyring.ParseDocument(req.Current.Value)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("AWSCURRENT version %s: %w (a new secret starts as {})", req.Current.ID, err)
	}
	keyARN, err := t.checkKey(ctx)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	ec := map[string]string{ContextSecretARN: req.Secret.ARN, ContextVersionID: req.Secret.Token}
	out, err := t.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             aws.String(keyARN),
		KeySpec:           kmstypes.DataKeySpecAes256,
		EncryptionContext: ec,
	})
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("generate data key under %s: %w", keyARN, err)
	}
	if len(out.Plaintext) != keyring.KeySize || len(out.CiphertextBlob) == 0 {
		return rotation.CreateResponse{}, fmt.Errorf("generate data key under %s: KMS returned a %d-byte key, want %d", keyARN, len(out.Plaintext), keyring.KeySize)
	}
	now := t.cfg.now()
	doc := keyring.Document{Key: keyring.Key{
		KID:               req.Secret.Token,
		Alg:               keyring.Algorithm,
		KMSKeyARN:         keyARN,
		Created:           now,
		WrappedKey:        out.CiphertextBlob,
		EncryptionContext: ec,
	}}
	if t.cfg.Storage == StoragePlaintext {
		doc.Material = out.Plaintext
	}
	var kept, dropped []string
	for i, k := range cur.Keys() {
		if i == 0 && k.Retired.IsZero() {
			k.Retired = now
		}
		// The key of AWSCURRENT is always carried: it becomes AWSPREVIOUS,
		// which consumers read anyway. Older keys only within the grace.
		if i > 0 && (!grace.Keep(k.Retired, now, t.cfg.Grace) || len(doc.Previous) >= grace.MaxRetired) {
			dropped = append(dropped, k.KID)
			continue
		}
		if t.cfg.Storage == StorageWrapped && len(k.WrappedKey) > 0 {
			k.Material = nil
		}
		doc.Previous = append(doc.Previous, k)
		kept = append(kept, k.KID)
	}
	value, err := json.Marshal(doc)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("encode data-key document: %w", err)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "data key generated",
		slog.String("kid", doc.KID),
		slog.String("kms_key_arn", keyARN),
		slog.String("key_storage", string(t.cfg.Storage)),
		slog.Any("carried_kids", kept),
		slog.Any("aged_out_kids", dropped),
		slog.String("grace_period", grace.Format(t.cfg.Grace)))
	return rotation.CreateResponse{Value: string(value)}, nil
}

// checkKey makes sure the configured KMS key can generate data keys and
// returns its ARN. It changes nothing.
func (t *Target) checkKey(ctx context.Context) (string, error) {
	out, err := t.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(t.cfg.KMSKeyID)})
	if err != nil {
		var nf *kmstypes.NotFoundException
		if errors.As(err, &nf) {
			return "", fmt.Errorf("%w: KMS_KEY_ID=%s does not exist: %w", ErrBadKMSKey, t.cfg.KMSKeyID, err)
		}
		return "", fmt.Errorf("describe KMS key %s: %w", t.cfg.KMSKeyID, err)
	}
	m := out.KeyMetadata
	if m == nil {
		return "", fmt.Errorf("describe KMS key %s: no metadata", t.cfg.KMSKeyID)
	}
	arn := aws.ToString(m.Arn)
	switch {
	case m.KeyState != kmstypes.KeyStateEnabled:
		return "", fmt.Errorf("%w: KMS_KEY_ID=%s (%s) is %s, not Enabled", ErrBadKMSKey, t.cfg.KMSKeyID, arn, m.KeyState)
	case m.KeySpec != kmstypes.KeySpecSymmetricDefault || (m.KeyUsage != kmstypes.KeyUsageTypeEncryptDecrypt && m.KeyUsage != ""):
		// An empty KeyUsage is the CreateKey default, ENCRYPT_DECRYPT; AWS
		// always states it, moto 5.2.1 omits it when CreateKey did.
		return "", fmt.Errorf("%w: KMS_KEY_ID=%s (%s) is a %s key for %s; data keys need a symmetric key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)", ErrBadKMSKey, t.cfg.KMSKeyID, arn, m.KeySpec, m.KeyUsage)
	case m.KeyManager != "" && m.KeyManager != kmstypes.KeyManagerTypeCustomer:
		return "", fmt.Errorf("%w: KMS_KEY_ID=%s (%s) is managed by %s; use a customer managed key, whose rotation this function can set", ErrBadKMSKey, t.cfg.KMSKeyID, arn, m.KeyManager)
	case m.Origin != "" && m.Origin != kmstypes.OriginTypeAwsKms:
		return "", fmt.Errorf("%w: KMS_KEY_ID=%s (%s) has origin %s; automatic rotation needs key material that KMS made (AWS_KMS)", ErrBadKMSKey, t.cfg.KMSKeyID, arn, m.Origin)
	}
	return arn, nil
}

// Set makes sure the KMS key rotates its own material automatically with the
// configured period. It reads first and writes only what differs, so a rerun
// changes nothing.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	pending, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	if _, err := keyring.ParseDocument(pending.Value); err != nil {
		return fmt.Errorf("pending version: %w", err)
	}
	keyARN, err := t.checkKey(ctx)
	if err != nil {
		return err
	}
	st, err := t.kms.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(keyARN)})
	if err != nil {
		return fmt.Errorf("get rotation status of KMS key %s: %w", keyARN, err)
	}
	period := aws.ToInt32(st.RotationPeriodInDays)
	log := logger(req.Log).With(slog.String("kms_key_arn", keyARN),
		slog.Bool("found_rotation_enabled", st.KeyRotationEnabled),
		slog.Int("found_rotation_period_days", int(period)),
		slog.Int("wanted_rotation_period_days", int(t.cfg.RotationDays)))
	// KMS states the period of an enabled key. When it does not (moto
	// 5.2.1 never does), EnableKeyRotation with the period is sent again:
	// it is idempotent, and the only way to be sure.
	if st.KeyRotationEnabled && period == t.cfg.RotationDays {
		log.LogAttrs(ctx, slog.LevelInfo, "KMS key rotation already as configured", slog.Bool("changed", false))
		return nil
	}
	if _, err := t.kms.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{
		KeyId:                aws.String(keyARN),
		RotationPeriodInDays: aws.Int32(t.cfg.RotationDays),
	}); err != nil {
		return fmt.Errorf("enable rotation of KMS key %s every %d days: %w", keyARN, t.cfg.RotationDays, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "KMS key rotation set", slog.Bool("changed", true))
	return nil
}

// Test proves that the pending key works: KMS unwraps the stored wrapped key
// under the encryption context of this secret version, the plaintext (if
// stored) is the same key, and an encrypt/decrypt round trip succeeds. It
// also checks that the current key is carried, so that data written under it
// stays readable once the pending version is current.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	doc, err := keyring.ParseDocument(pv.Value)
	if err != nil {
		return fmt.Errorf("pending version: %w", err)
	}
	// The pending key is the one this rotation made, or, after a rollback
	// (rotationctl rollback), an older key of this secret made primary
	// again. Either way its encryption context binds it to this secret and
	// to the version that made it, and KMS proves that below.
	if doc.Empty() {
		return fmt.Errorf("pending version holds no key, want the key %s of this rotation", req.Secret.Token)
	}
	if doc.EncryptionContext[ContextSecretARN] != req.Secret.ARN || doc.EncryptionContext[ContextVersionID] != doc.KID {
		return fmt.Errorf("pending key %s is bound to another secret or version by its encryption context", doc.KID)
	}
	out, err := t.kms.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:    doc.WrappedKey,
		KeyId:             aws.String(doc.KMSKeyARN),
		EncryptionContext: doc.EncryptionContext,
	})
	if err != nil {
		return fmt.Errorf("unwrap pending key %s with %s: %w", doc.KID, doc.KMSKeyARN, err)
	}
	if doc.Material != nil && subtle.ConstantTimeCompare(doc.Material, out.Plaintext) != 1 {
		return fmt.Errorf("pending key %s: the stored key differs from what KMS unwraps", doc.KID)
	}
	key := doc.Key
	key.Material = out.Plaintext
	probe := []byte("datakey probe " + req.Secret.Token)
	aad := []byte(req.Secret.ARN)
	ct, err := keyring.Seal(key, probe, aad)
	if err != nil {
		return fmt.Errorf("encrypt with pending key: %w", err)
	}
	pt, err := keyring.Open(key, ct, aad)
	if err != nil {
		return fmt.Errorf("decrypt with pending key: %w", err)
	}
	if subtle.ConstantTimeCompare(pt, probe) != 1 {
		return fmt.Errorf("pending key %s: round trip returned other data", doc.KID)
	}
	cv, err := req.Versions.Current(ctx)
	if err != nil {
		return err
	}
	cur, err := keyring.ParseDocument(cv.Value)
	if err != nil {
		return fmt.Errorf("AWSCURRENT version %s: %w", cv.ID, err)
	}
	if !cur.Empty() && !carries(doc, cur.KID) {
		return fmt.Errorf("pending version does not carry the current key %s: data encrypted under it would become unreadable", cur.KID)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "pending data key works",
		slog.String("kid", doc.KID), slog.Int("previous_keys", len(doc.Previous)))
	return nil
}

func carries(doc keyring.Document, kid string) bool {
	for _, k := range doc.Previous {
		if k.KID == kid {
			return true
		}
	}
	return false
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
