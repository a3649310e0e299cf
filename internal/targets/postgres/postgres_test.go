package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestScramVerifierShapeAndKeys(t *testing.T) {
	salt := []byte("0123456789abcdef")
	v, err := scramVerifier("pencil", salt)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$`)
	m := re.FindStringSubmatch(v)
	if m == nil {
		t.Fatalf("verifier %q has not the PostgreSQL form", v)
	}
	if m[1] != base64.StdEncoding.EncodeToString(salt) {
		t.Fatalf("salt not encoded in the verifier")
	}
	// Recompute the keys the way RFC 5802 defines them, independently.
	salted, _ := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
	mac := func(msg string) []byte { h := hmac.New(sha256.New, salted); h.Write([]byte(msg)); return h.Sum(nil) }
	stored := sha256.Sum256(mac("Client Key"))
	if m[2] != base64.StdEncoding.EncodeToString(stored[:]) || m[3] != base64.StdEncoding.EncodeToString(mac("Server Key")) {
		t.Fatal("StoredKey or ServerKey differ from RFC 5802")
	}
	if strings.Contains(v, "pencil") {
		t.Fatal("verifier contains the password")
	}
	// A fresh salt each time.
	a, _ := scramVerifier("pencil", nil)
	b, _ := scramVerifier("pencil", nil)
	if a == b {
		t.Fatal("two verifiers of one password are equal: salt not random")
	}
}

func TestScramRefusesNonASCII(t *testing.T) {
	if _, err := scramVerifier("pässwort", nil); err == nil {
		t.Fatal("non-ASCII password accepted")
	}
}

func TestQuoteVerifierRejectsQuotes(t *testing.T) {
	for _, bad := range []string{"a'b", `a\b`, "a b", "a;b", ""} {
		if bad == "" {
			continue
		}
		if _, err := quoteVerifier(bad); err == nil {
			t.Errorf("quoteVerifier(%q) accepted", bad)
		}
	}
	got, err := quoteVerifier("SCRAM-SHA-256$4096:abc=$x+/:y")
	if err != nil || got != "'SCRAM-SHA-256$4096:abc=$x+/:y'" {
		t.Fatalf("quoteVerifier = %q, %v", got, err)
	}
}
