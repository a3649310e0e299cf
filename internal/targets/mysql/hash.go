package mysql

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// The authentication plugins whose stored form the function computes, so
// that a new password reaches the server only as that form: never as
// plaintext in SQL text, where MariaDB's general log and any error quoting
// the statement would show it.
const (
	pluginNative     = "mysql_native_password" // MySQL 8 and MariaDB
	pluginCachingSHA = "caching_sha2_password" // MySQL 8's default
	pluginEd25519    = "ed25519"               // MariaDB
)

// nativeHash is what mysql_native_password stores and PASSWORD() returns:
// "*" and the upper-case hex of SHA1(SHA1(password)).
func nativeHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// ed25519Hash is what MariaDB's ed25519 plugin stores: the Ed25519 public
// key whose secret scalar is the clamped first half of SHA-512(password),
// in unpadded base64 (43 characters).
func ed25519Hash(password string) (string, error) {
	h := sha512.Sum512([]byte(password))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		return "", fmt.Errorf("ed25519 scalar: %w", err)
	}
	a := new(edwards25519.Point).ScalarBaseMult(s)
	return base64.RawStdEncoding.EncodeToString(a.Bytes()), nil
}

// cachingSHA2SaltLen is the salt length of MySQL's caching_sha2_password
// (CRYPT_SALT_LENGTH): longer than SHA-crypt's usual 16.
const cachingSHA2SaltLen = 20

// saltAlphabet is what a generated salt is made of. MySQL accepts any
// bytes but '$' (its SHA-crypt stops the salt there) and NUL; letters and
// digits keep the hash printable, so that SQL text and SHOW CREATE USER
// need no hex form.
const saltAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// cachingSHA2Hash is what MySQL 8's caching_sha2_password stores:
//
//	$A$<rounds/1000, 3 digits>$<20-byte salt><43-character SHA-256-crypt digest>
//
// (sql/auth/sha2_password.cc, Caching_sha2_password::serialize, over
// mysys/crypt_genhash_impl.cc, which is Drepper's SHA-crypt with a 20-byte
// salt). rounds is the server's caching_sha2_password_digest_rounds (5000
// unless configured), which must be a multiple of 1000 to be written. A nil
// salt is drawn at random.
func cachingSHA2Hash(password string, salt []byte, rounds int) (string, error) {
	if rounds < 5000 || rounds%1000 != 0 || rounds/1000 > 999 {
		return "", fmt.Errorf("caching_sha2_password_digest_rounds=%d cannot be written in the $A$ form (a multiple of 1000 from 5000 to 999000)", rounds)
	}
	if salt == nil {
		salt = make([]byte, cachingSHA2SaltLen)
		idx := make([]byte, cachingSHA2SaltLen)
		// 62 letters: take bytes below 248 (4*62) for an unbiased draw.
		for i := 0; i < len(salt); {
			if _, err := rand.Read(idx); err != nil {
				return "", fmt.Errorf("salt: %w", err)
			}
			for _, b := range idx {
				if b < 248 && i < len(salt) {
					salt[i] = saltAlphabet[b%62]
					i++
				}
			}
		}
	}
	if len(salt) != cachingSHA2SaltLen {
		return "", fmt.Errorf("salt of %d bytes, want %d", len(salt), cachingSHA2SaltLen)
	}
	return fmt.Sprintf("$A$%03d$%s%s", rounds/1000, salt, shaCrypt256([]byte(password), salt, rounds)), nil
}

// shaCrypt256 is the digest part of SHA-256-crypt (Ulrich Drepper,
// "Unix crypt using SHA-256 and SHA-512", steps 1-22) for any salt length.
func shaCrypt256(key, salt []byte, rounds int) string {
	sum := func(parts ...[]byte) []byte {
		h := sha256.New()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	// repeat fills n bytes with copies of d.
	repeat := func(d []byte, n int) []byte {
		out := make([]byte, 0, n)
		for len(out) < n {
			out = append(out, d[:min(len(d), n-len(out))]...)
		}
		return out
	}

	b := sum(key, salt, key)
	a := sha256.New()
	a.Write(key)
	a.Write(salt)
	a.Write(repeat(b, len(key)))
	for i := len(key); i > 0; i >>= 1 {
		if i&1 != 0 {
			a.Write(b)
		} else {
			a.Write(key)
		}
	}
	c := a.Sum(nil)

	dp := sha256.New()
	for range key {
		dp.Write(key)
	}
	p := repeat(dp.Sum(nil), len(key))

	ds := sha256.New()
	for range 16 + int(c[0]) {
		ds.Write(salt)
	}
	s := repeat(ds.Sum(nil), len(salt))

	for i := range rounds {
		h := sha256.New()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(nil)
	}

	const b64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var out strings.Builder
	put := func(b2, b1, b0 byte, n int) {
		w := uint32(b2)<<16 | uint32(b1)<<8 | uint32(b0)
		for range n {
			out.WriteByte(b64[w&0x3f])
			w >>= 6
		}
	}
	for _, t := range [][3]int{{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
		{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29}} {
		put(c[t[0]], c[t[1]], c[t[2]], 4)
	}
	put(0, c[31], c[30], 3)
	return out.String()
}
