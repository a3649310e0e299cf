package rabbitmq

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
)

// HashingAlgorithm is the hashing module PasswordHash follows, sent beside
// each hash so that the broker checks it with the same module whatever its
// own default (RabbitMQ's default since 3.6).
const HashingAlgorithm = "rabbit_password_hashing_sha256"

// saltLen is the salt length of rabbit_password_hashing_* (rabbit_password.erl).
const saltLen = 4

// PasswordHash returns password hashed the way RabbitMQ's
// rabbit_password_hashing_sha256 does: a random 4-byte salt, then
// base64(salt ‖ SHA-256(salt ‖ UTF-8 password)). The management API takes
// it as "password_hash", so the plaintext never reaches the broker.
func PasswordHash(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	return saltedHash(sha256.New, salt, password), nil
}

func saltedHash(h func() hash.Hash, salt []byte, password string) string {
	d := h()
	d.Write(salt)
	d.Write([]byte(password))
	return base64.StdEncoding.EncodeToString(append(append([]byte{}, salt...), d.Sum(nil)...))
}

// passwordMatches reports whether password is the one stored hashes, for
// the hashing modules RabbitMQ ships.
func passwordMatches(algorithm, stored, password string) (bool, error) {
	var h func() hash.Hash
	switch algorithm {
	case "rabbit_password_hashing_sha256", "":
		h = sha256.New
	case "rabbit_password_hashing_sha512":
		h = sha512.New
	case "rabbit_password_hashing_md5":
		h = md5.New
	default:
		return false, fmt.Errorf("hashing algorithm %q is not one RabbitMQ ships", algorithm)
	}
	if stored == "" {
		return false, nil // a user without a password
	}
	raw, err := base64.StdEncoding.DecodeString(stored)
	if err != nil || len(raw) <= saltLen {
		return false, fmt.Errorf("stored password hash is not base64 of a salt and a digest")
	}
	want := saltedHash(h, raw[:saltLen], password)
	return subtle.ConstantTimeCompare([]byte(want), []byte(stored)) == 1, nil
}

// randomPasswordHash is the hash of a random password that is thrown away.
func randomPasswordHash() (string, error) {
	pw := make([]byte, 32)
	if _, err := rand.Read(pw); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	return PasswordHash(base64.StdEncoding.EncodeToString(pw))
}
