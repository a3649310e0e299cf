package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Algorithm is the one data-key algorithm: AES with a 256-bit key in Galois
// counter mode, with a random 96-bit nonce per message.
const Algorithm = "AES-256-GCM"

// KeySize is the size of a data key in bytes.
const KeySize = 32

// Key is one data key as the secret stores it. Its String and GoString
// methods name the key without its material, so that a Key printed by
// mistake leaks nothing.
type Key struct {
	// KID identifies the key in every ciphertext made with it. The rotation
	// function uses the id of the secret version that introduced the key.
	KID string `json:"kid"`
	Alg string `json:"alg"`
	// KMSKeyARN is the customer managed KMS key that wrapped the key.
	KMSKeyARN string    `json:"kms_key_arn"`
	Created   time.Time `json:"created"`
	// Retired is when a newer key replaced this one; zero for the newest.
	Retired time.Time `json:"retired,omitzero"`
	// Material is the plaintext key. It is absent when the function stores
	// keys wrapped only (KEY_STORAGE=wrapped): WrappedKey must then be
	// decrypted with kms:Decrypt and EncryptionContext.
	Material []byte `json:"key,omitempty"`
	// WrappedKey is the key encrypted under KMSKeyARN (the CiphertextBlob
	// of GenerateDataKey).
	WrappedKey []byte `json:"wrapped_key"`
	// EncryptionContext is the KMS encryption context the key was wrapped
	// with; kms:Decrypt needs it.
	EncryptionContext map[string]string `json:"encryption_context"`
}

// String names the key without its material.
func (k Key) String() string { return fmt.Sprintf("data key %s (%s)", k.KID, k.Alg) }

// GoString names the key without its material, for %#v.
func (k Key) GoString() string { return k.String() }

// Document is the JSON value of a data-key secret version: the version's own
// key, and the retired keys still within the grace period, newest first.
//
// The empty object "{}" is a valid document with no key: a secret created
// with it is ready for its first rotation.
type Document struct {
	Key
	Previous []Key `json:"previous,omitempty"`
}

// String names the document without key material.
func (d Document) String() string {
	if d.Empty() {
		return "empty data-key document"
	}
	return fmt.Sprintf("data-key document %s with %d previous keys", d.KID, len(d.Previous))
}

// GoString names the document without key material, for %#v.
func (d Document) GoString() string { return d.String() }

// Empty reports whether the document holds no key (the "{}" bootstrap value).
func (d Document) Empty() bool { return d.KID == "" && len(d.Previous) == 0 }

// Keys returns the document's own key and its previous keys, newest first.
func (d Document) Keys() []Key {
	if d.Empty() {
		return nil
	}
	return append([]Key{d.Key}, d.Previous...)
}

// ErrNotDataKey reports a secret value that is not a data-key document.
var ErrNotDataKey = errors.New("secret is not a data-key document")

// ParseDocument parses and checks a secret value. Its errors never quote the
// value.
func ParseDocument(value string) (Document, error) {
	var d Document
	dec := json.NewDecoder(strings.NewReader(value))
	if err := dec.Decode(&d); err != nil {
		// The decoder's message may quote part of the value: keep only
		// where it failed.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return Document{}, fmt.Errorf("%w: invalid JSON at byte %d", ErrNotDataKey, se.Offset)
		case errors.As(err, &te):
			return Document{}, fmt.Errorf("%w: field %q has the wrong type", ErrNotDataKey, te.Field)
		}
		return Document{}, fmt.Errorf("%w: not a JSON object", ErrNotDataKey)
	}
	if dec.More() {
		return Document{}, fmt.Errorf("%w: data after the JSON object", ErrNotDataKey)
	}
	if d.Empty() {
		if !isEmptyObject(value) {
			return Document{}, fmt.Errorf("%w: no kid (the only value without a key is the empty object {})", ErrNotDataKey)
		}
		return d, nil
	}
	if err := d.Key.check(); err != nil {
		return Document{}, err
	}
	for _, p := range d.Previous {
		if err := p.check(); err != nil {
			return Document{}, fmt.Errorf("previous key: %w", err)
		}
	}
	return d, nil
}

func isEmptyObject(value string) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal([]byte(value), &m) == nil && m != nil && len(m) == 0
}

func (k Key) check() error {
	switch {
	case k.KID == "":
		return fmt.Errorf("%w: a key has no kid", ErrNotDataKey)
	case len(k.KID) > 255:
		return fmt.Errorf("%w: kid is longer than 255 bytes", ErrNotDataKey)
	case k.Alg != Algorithm:
		return fmt.Errorf("%w: key %s has alg %q, want %s", ErrNotDataKey, k.KID, k.Alg, Algorithm)
	case k.Material == nil && k.WrappedKey == nil:
		return fmt.Errorf("%w: key %s has neither key nor wrapped_key", ErrNotDataKey, k.KID)
	case k.Material != nil && len(k.Material) != KeySize:
		return fmt.Errorf("%w: key %s is %d bytes, want %d", ErrNotDataKey, k.KID, len(k.Material), KeySize)
	case k.WrappedKey != nil && k.KMSKeyARN == "":
		return fmt.Errorf("%w: key %s has a wrapped_key but no kms_key_arn", ErrNotDataKey, k.KID)
	}
	return nil
}

// The ciphertext format: one version byte, the kid's length in one byte, the
// kid, a 12-byte nonce, and the GCM output (ciphertext and 16-byte tag). The
// header (version, length, kid) is authenticated as additional data, so a
// kid cannot be swapped.
const (
	formatV1  = 0x01
	nonceSize = 12
)

// ErrMalformed reports bytes that are not a ciphertext of this package.
var ErrMalformed = errors.New("malformed ciphertext")

// KIDOf returns the kid that ciphertext names.
func KIDOf(ciphertext []byte) (string, error) {
	kid, _, _, err := split(ciphertext)
	return kid, err
}

func split(ct []byte) (kid string, header, rest []byte, err error) {
	if len(ct) < 2 || ct[0] != formatV1 {
		return "", nil, nil, fmt.Errorf("%w: unknown format", ErrMalformed)
	}
	n := int(ct[1])
	if n == 0 || len(ct) < 2+n+nonceSize+16 {
		return "", nil, nil, fmt.Errorf("%w: too short", ErrMalformed)
	}
	return string(ct[2 : 2+n]), ct[:2+n], ct[2+n:], nil
}

// Seal encrypts plaintext with key, binding aad (which may be nil); Open
// needs the same aad.
func Seal(key Key, plaintext, aad []byte) ([]byte, error) {
	aead, err := key.aead()
	if err != nil {
		return nil, err
	}
	if len(key.KID) == 0 || len(key.KID) > 255 {
		return nil, fmt.Errorf("seal: kid of %d bytes, want 1..255", len(key.KID))
	}
	header := append([]byte{formatV1, byte(len(key.KID))}, key.KID...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out := append(header, nonce...)
	return aead.Seal(out, nonce, plaintext, additional(header, aad)), nil
}

// Open decrypts a ciphertext made by Seal with key.
func Open(key Key, ciphertext, aad []byte) ([]byte, error) {
	kid, header, rest, err := split(ciphertext)
	if err != nil {
		return nil, err
	}
	if kid != key.KID {
		return nil, fmt.Errorf("open: ciphertext names key %s, not %s", kid, key.KID)
	}
	aead, err := key.aead()
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, rest[:nonceSize], rest[nonceSize:], additional(header, aad))
	if err != nil {
		return nil, fmt.Errorf("open with key %s: message authentication failed (wrong key, associated data or tampered ciphertext)", key.KID)
	}
	return pt, nil
}

func additional(header, aad []byte) []byte {
	return append(append([]byte(nil), header...), aad...)
}

func (k Key) aead() (cipher.AEAD, error) {
	if len(k.Material) != KeySize {
		return nil, fmt.Errorf("key %s has no %d-byte plaintext material (unwrap it first)", k.KID, KeySize)
	}
	block, err := aes.NewCipher(k.Material)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", k.KID, err)
	}
	return cipher.NewGCM(block)
}
