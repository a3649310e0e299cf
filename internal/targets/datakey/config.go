// Package datakey is the rotation target for AES-256-GCM data keys that a
// customer managed KMS key generates. Each rotation asks KMS for a new
// 256-bit data key (GenerateDataKey) bound by an encryption context to the
// secret's ARN and the new version id, and stores it with the retired keys
// still within the grace period (see pkg/keyring for the format and the
// consumer side). Set makes sure that the KMS key itself rotates its key
// material automatically; Test proves an encrypt/decrypt round trip with the
// pending key and that KMS unwraps what the secret stores.
//
// It is configured from the environment of the Lambda function:
//
//	Variable                  Default    Meaning
//	KMS_KEY_ID                (required) key id, key ARN, alias name or alias ARN of a
//	                                     symmetric customer managed KMS key
//	KMS_ROTATION_PERIOD_DAYS  365        automatic rotation period of the KMS key, 90..2560
//	KEY_STORAGE               plaintext  plaintext: store the key and its wrapped form;
//	                                     wrapped: store only the wrapped form (consumers
//	                                     need kms:Decrypt)
//	GRACE_PERIOD              365d       how long a retired key is carried into new
//	                                     versions: 90d or a Go duration, 1h..3650d
package datakey

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/grace"
)

// Storage says how the key material is stored in the secret.
type Storage string

// The storage modes.
const (
	StoragePlaintext Storage = "plaintext"
	StorageWrapped   Storage = "wrapped"
)

// Limits of KMS automatic rotation (EnableKeyRotation RotationPeriodInDays).
const (
	MinRotationDays     = 90
	MaxRotationDays     = 2560
	DefaultRotationDays = 365
	DefaultGrace        = 365 * 24 * time.Hour
)

// Config is the configuration of a Target.
type Config struct {
	KMSKeyID     string
	RotationDays int32
	Storage      Storage
	Grace        time.Duration
	// Now is the clock; nil means time.Now. Tests move it to age keys out.
	Now func() time.Time
}

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{RotationDays: DefaultRotationDays, Storage: StoragePlaintext}
	c.KMSKeyID = strings.TrimSpace(getenv("KMS_KEY_ID"))
	if c.KMSKeyID == "" {
		return Config{}, errors.New("KMS_KEY_ID is not set: name the symmetric customer managed KMS key that generates the data keys")
	}
	if s := strings.TrimSpace(getenv("KMS_ROTATION_PERIOD_DAYS")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return Config{}, fmt.Errorf("KMS_ROTATION_PERIOD_DAYS=%q is not an integer", s)
		}
		if n < MinRotationDays || n > MaxRotationDays {
			return Config{}, fmt.Errorf("KMS_ROTATION_PERIOD_DAYS=%d is outside %d..%d, the range KMS accepts", n, MinRotationDays, MaxRotationDays)
		}
		c.RotationDays = int32(n)
	}
	switch s := strings.TrimSpace(getenv("KEY_STORAGE")); Storage(s) {
	case "", StoragePlaintext:
	case StorageWrapped:
		c.Storage = StorageWrapped
	default:
		return Config{}, fmt.Errorf("KEY_STORAGE=%q is not one of %s, %s", s, StoragePlaintext, StorageWrapped)
	}
	g, err := grace.FromEnv(getenv, "GRACE_PERIOD", DefaultGrace)
	if err != nil {
		return Config{}, err
	}
	c.Grace = g
	return c, nil
}

// Describe returns the configuration as log attributes; none of it is secret.
func (c Config) Describe() []slog.Attr {
	return []slog.Attr{
		slog.String("kms_key_id", c.KMSKeyID),
		slog.Int("kms_rotation_period_days", int(c.RotationDays)),
		slog.String("key_storage", string(c.Storage)),
		slog.String("grace_period", grace.Format(c.Grace)),
	}
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}
