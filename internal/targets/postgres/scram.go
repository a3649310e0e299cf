package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier of password in the form
// PostgreSQL stores (RFC 5802, RFC 7677):
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// Sending the verifier instead of the password keeps the plaintext off the
// server and out of its logs. PostgreSQL normalises passwords with SASLprep
// before hashing; SASLprep leaves printable ASCII unchanged, so other
// passwords are refused rather than hashed differently from the server.
func scramVerifier(password string, salt []byte) (string, error) {
	for i := 0; i < len(password); i++ {
		if b := password[i]; b < 0x20 || b > 0x7e {
			return "", errors.New("password has a character outside printable ASCII, which SASLprep may change: refused")
		}
	}
	if salt == nil {
		salt = make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("salt: %w", err)
		}
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("pbkdf2: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// quoteVerifier returns v as an SQL string literal. ALTER ROLE ... PASSWORD
// takes no bind parameter, so the literal is written into the statement;
// it is safe because a verifier only holds [A-Za-z0-9+/=:$-], which is
// checked first, and none of those characters ends or escapes a literal.
func quoteVerifier(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		b := v[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '+' || b == '/' || b == '=' || b == ':' || b == '$' || b == '-':
		default:
			return "", errors.New("SCRAM verifier holds a character outside [A-Za-z0-9+/=:$-]")
		}
	}
	return "'" + v + "'", nil
}
