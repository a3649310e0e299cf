// Package keyring encrypts and decrypts application data with the data keys
// that the datakey rotation function keeps in an AWS Secrets Manager secret.
//
// A Keyring reads the AWSCURRENT, AWSPREVIOUS and (when a rotation is in
// progress) AWSPENDING versions of the secret. It encrypts with the key of
// AWSCURRENT and decrypts any ciphertext whose kid it holds: the keys of
// those versions and the retired keys that AWSCURRENT and AWSPENDING carry,
// which are those that were within the function's grace period
// (GRACE_PERIOD) when the version was created. A ciphertext that
// names a kid the keyring does not hold makes it read the secret again once
// (a rotation may have happened since), and then fails with a *KeyError
// naming the kid.
//
//	kr, err := keyring.New(keyring.Options{SecretID: arn, Secrets: secretsmanager.NewFromConfig(cfg)})
//	ct, err := kr.Encrypt(ctx, []byte("card 4111..."), []byte("customer-42"))
//	pt, err := kr.Decrypt(ctx, ct, []byte("customer-42"))
//
// Each key is bound to the secret by the KMS encryption context the datakey
// function gives it (SecretARN, the ARN of the secret in its primary
// region). The keyring uses only keys bound to the secret it reads: a key
// whose SecretARN names another secret is refused. A replica of the secret
// in another region has the same ARN but for the region, so a keyring in a
// replica region reads the replica and uses its keys; wrapped keys of a
// multi-Region KMS key are unwrapped by the key's replica in that region
// (the KMS client's region must then be the replica's).
//
// A Keyring is safe for concurrent use.
package keyring

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// SecretsAPI is the Secrets Manager call a Keyring makes;
// *secretsmanager.Client satisfies it.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// KMSAPI is the KMS call a Keyring makes for keys stored wrapped only;
// *kms.Client satisfies it.
type KMSAPI interface {
	Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Options configure a Keyring.
type Options struct {
	// SecretID is the ARN or name of the data-key secret.
	SecretID string
	Secrets  SecretsAPI
	// KMS unwraps keys that the secret stores wrapped only
	// (KEY_STORAGE=wrapped). It may be nil when keys are stored in plaintext.
	KMS KMSAPI
	// TTL is how long the keys are used before the secret is read again,
	// so that Encrypt moves to a new AWSCURRENT. Default 5 minutes.
	TTL time.Duration
	// MinRefresh is the least time between two reads caused by unknown
	// kids, so that forged ciphertexts cannot flood Secrets Manager.
	// Default 1 second.
	MinRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// The errors of a key lookup; a *KeyError wraps one of them.
var (
	ErrUnknownKey = errors.New("not in the keyring")
	ErrNoKey      = errors.New("the secret holds no data key yet")
)

// KeyError reports a ciphertext whose key the keyring cannot use.
type KeyError struct {
	KID    string
	Secret string
	Err    error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("data key %s %v: it is not a key of AWSCURRENT, AWSPENDING or AWSPREVIOUS of %s, nor a retired key within their grace period (it aged out, or belongs to another secret)", e.KID, e.Err, e.Secret)
}

func (e *KeyError) Unwrap() error { return e.Err }

// Keyring holds the data keys of one secret.
type Keyring struct {
	opt Options

	mu          sync.Mutex
	keys        map[string]Key
	current     Key
	loaded      time.Time
	lastRefresh time.Time
}

// New returns a Keyring. It reads nothing until first used.
func New(opt Options) (*Keyring, error) {
	if opt.SecretID == "" {
		return nil, errors.New("keyring: no SecretID")
	}
	if opt.Secrets == nil {
		return nil, errors.New("keyring: no Secrets Manager client")
	}
	if opt.TTL <= 0 {
		opt.TTL = 5 * time.Minute
	}
	if opt.MinRefresh <= 0 {
		opt.MinRefresh = time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Keyring{opt: opt}, nil
}

// Encrypt seals plaintext with the AWSCURRENT key, binding aad (which may be
// nil): Decrypt needs the same aad.
func (k *Keyring) Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	cur, err := k.currentKey(ctx)
	if err != nil {
		return nil, err
	}
	return Seal(cur, plaintext, aad)
}

// Decrypt opens a ciphertext made by Encrypt with any key the keyring holds.
func (k *Keyring) Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	kid, err := KIDOf(ciphertext)
	if err != nil {
		return nil, err
	}
	key, err := k.Key(ctx, kid)
	if err != nil {
		return nil, err
	}
	return Open(key, ciphertext, aad)
}

// Key returns the key kid, reading the secret again if the kid is unknown.
func (k *Keyring) Key(ctx context.Context, kid string) (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.loadIfStale(ctx); err != nil {
		return Key{}, err
	}
	if key, ok := k.keys[kid]; ok {
		return key, nil
	}
	if k.opt.Now().Sub(k.lastRefresh) >= k.opt.MinRefresh {
		if err := k.load(ctx); err != nil {
			return Key{}, err
		}
		if key, ok := k.keys[kid]; ok {
			return key, nil
		}
	}
	return Key{}, &KeyError{KID: kid, Secret: k.opt.SecretID, Err: ErrUnknownKey}
}

// KIDs returns the kids the keyring holds, sorted.
func (k *Keyring) KIDs(ctx context.Context) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.loadIfStale(ctx); err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(k.keys)), nil
}

// CurrentKID returns the kid that Encrypt uses.
func (k *Keyring) CurrentKID(ctx context.Context) (string, error) {
	cur, err := k.currentKey(ctx)
	return cur.KID, err
}

// Refresh reads the secret now.
func (k *Keyring) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.load(ctx)
}

func (k *Keyring) currentKey(ctx context.Context) (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.loadIfStale(ctx); err != nil {
		return Key{}, err
	}
	if k.current.KID == "" {
		return Key{}, fmt.Errorf("keyring %s: AWSCURRENT: %w (it is the bootstrap value {}: rotate the secret once)", k.opt.SecretID, ErrNoKey)
	}
	return k.current, nil
}

func (k *Keyring) loadIfStale(ctx context.Context) error {
	if k.keys != nil && k.opt.Now().Sub(k.loaded) < k.opt.TTL {
		return nil
	}
	return k.load(ctx)
}

// load reads the labelled versions: every key of AWSCURRENT and AWSPENDING,
// and the own key of AWSPREVIOUS. The retired keys that AWSPREVIOUS carries
// are left out on purpose: those still within the grace period are carried
// by AWSCURRENT as well, and the others aged out when AWSCURRENT was made.
func (k *Keyring) load(ctx context.Context) error {
	k.lastRefresh = k.opt.Now()
	keys := map[string]Key{}
	var current Key
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"} {
		doc, arn, ok, err := k.read(ctx, stage)
		if err != nil {
			return err
		}
		if !ok {
			if stage == "AWSCURRENT" {
				return fmt.Errorf("keyring %s: no AWSCURRENT version", k.opt.SecretID)
			}
			continue
		}
		docKeys := doc.Keys()
		if stage == "AWSPREVIOUS" && len(docKeys) > 0 {
			// Only its own key: the keys it carries aged out or are
			// carried by AWSCURRENT too.
			docKeys = docKeys[:1]
		}
		for i, key := range docKeys {
			if _, seen := keys[key.KID]; seen && i > 0 {
				continue
			}
			if bound := key.EncryptionContext[ContextSecretARN]; bound != "" && !SameSecret(bound, arn) {
				return fmt.Errorf("keyring %s: %s: key %s is bound to the secret %s, not to this one: refusing to use it", k.opt.SecretID, stage, key.KID, bound)
			}
			if key.Material == nil {
				// A key already unwrapped from another version is reused.
				if prev, ok := k.keys[key.KID]; ok && prev.Material != nil {
					key.Material = prev.Material
				} else if key.Material, err = k.unwrap(ctx, key, arn); err != nil {
					return err
				}
			}
			keys[key.KID] = key
		}
		if stage == "AWSCURRENT" {
			current = doc.Key
			if current.KID != "" {
				current = keys[current.KID]
			}
		}
	}
	k.keys, k.current, k.loaded = keys, current, k.opt.Now()
	return nil
}

func (k *Keyring) read(ctx context.Context, stage string) (Document, string, bool, error) {
	val, arn, ok, err := secretstore.ReadStage(ctx, k.opt.Secrets, k.opt.SecretID, stage)
	if err != nil {
		return Document{}, "", false, fmt.Errorf("keyring: %w", err)
	}
	if !ok {
		return Document{}, "", false, nil
	}
	doc, err := ParseDocument(val)
	if err != nil {
		return Document{}, "", false, fmt.Errorf("keyring %s: %s: %w", k.opt.SecretID, stage, err)
	}
	return doc, arn, true, nil
}

// unwrap decrypts a wrapped key with KMS. secretARN is the secret as read:
// in a replica region, a multi-Region KMS key is used through its replica
// in that region first.
func (k *Keyring) unwrap(ctx context.Context, key Key, secretARN string) ([]byte, error) {
	if k.opt.KMS == nil {
		return nil, fmt.Errorf("keyring %s: key %s is stored wrapped only and the keyring has no KMS client", k.opt.SecretID, key.KID)
	}
	var out *kms.DecryptOutput
	var err error
	for _, keyID := range kmsKeyIDs(key.KMSKeyARN, secretARN) {
		out, err = k.opt.KMS.Decrypt(ctx, &kms.DecryptInput{
			CiphertextBlob:    key.WrappedKey,
			KeyId:             aws.String(keyID),
			EncryptionContext: key.EncryptionContext,
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("keyring %s: unwrap key %s with %s: %w", k.opt.SecretID, key.KID, key.KMSKeyARN, err)
	}
	if len(out.Plaintext) != KeySize {
		return nil, fmt.Errorf("keyring %s: key %s unwrapped to %d bytes, want %d", k.opt.SecretID, key.KID, len(out.Plaintext), KeySize)
	}
	return out.Plaintext, nil
}

// ContextSecretARN is the encryption context key that binds a data key to
// its secret (the datakey function's).
const ContextSecretARN = "SecretARN"

// SameSecret reports whether two secret ARNs name the same secret, in the
// same or another region: a secret and its replicas share partition,
// account, name and the random suffix Secrets Manager gave the name; only
// the region differs. A secret of the same name made separately in another
// region has another suffix.
func SameSecret(a, b string) bool {
	pa, pb := strings.SplitN(a, ":", 6), strings.SplitN(b, ":", 6)
	if len(pa) != 6 || len(pb) != 6 {
		return a == b
	}
	pa[3], pb[3] = "", ""
	return slices.Equal(pa, pb)
}

// kmsKeyIDs returns the KMS key ids to unwrap with: the key that wrapped it,
// preceded, when the secret is read in another region and the key is a
// multi-Region key (mrk-...), by the same key id in the secret's region.
func kmsKeyIDs(keyARN, secretARN string) []string {
	pk, ps := strings.SplitN(keyARN, ":", 6), strings.SplitN(secretARN, ":", 6)
	if len(pk) != 6 || len(ps) != 6 || pk[3] == ps[3] || !strings.HasPrefix(pk[5], "key/mrk-") {
		return []string{keyARN}
	}
	local := slices.Clone(pk)
	local[3] = ps[3]
	return []string{strings.Join(local, ":"), keyARN}
}
