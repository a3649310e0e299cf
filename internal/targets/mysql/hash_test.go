package mysql

import (
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestNativeHash(t *testing.T) {
	// The example of MySQL's manual (PASSWORD('mypass')).
	if got := nativeHash("mypass"); got != "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4" {
		t.Fatalf("nativeHash(mypass) = %s", got)
	}
}

func TestEd25519Hash(t *testing.T) {
	// What MariaDB 10.11 stored for CREATE USER ... IDENTIFIED VIA
	// ed25519 USING PASSWORD('edpw1'); TestHashesMatchTheServer checks
	// fresh passwords against the live server.
	got, err := ed25519Hash("edpw1")
	if err != nil || got != "KfGcY9Q7aV8eOY4F/c1H7zEfnIeC+9k0vzOB/R0raII" {
		t.Fatalf("ed25519Hash(edpw1) = %s, %v", got, err)
	}
}

// TestShaCrypt256Vectors: the SHA-256-crypt test vectors of Drepper's
// specification (salts of 16 bytes and less, default and custom rounds).
func TestShaCrypt256Vectors(t *testing.T) {
	for _, v := range []struct {
		key, salt string
		rounds    int
		want      string
	}{
		{"Hello world!", "saltstring", 5000, "5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
		{"Hello world!", "saltstringsaltst", 10000, "3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
		{"This is just a test", "toolongsaltstrin", 5000, "Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
	} {
		if got := shaCrypt256([]byte(v.key), []byte(v.salt), v.rounds); got != v.want {
			t.Errorf("shaCrypt256(%q, %q, %d) = %s, want %s", v.key, v.salt, v.rounds, got, v.want)
		}
	}
}

// TestCachingSHA2Hash: MySQL's caching_sha2_password form with its 20-byte
// salt, checked against hashcat's self-test hash of mode 7401 ("MySQL $A$
// (sha256crypt)", password "hashcat"), which hashcat verifies against
// hashes taken from MySQL 8. No MySQL 8 server can run here: this vector
// is the evidence that MySQL would accept the hash.
func TestCachingSHA2Hash(t *testing.T) {
	salt, _ := hex.DecodeString("F9CC98CE08892924F50A213B6BC571A2C11778C5")
	digest, _ := hex.DecodeString("625479393559393965414D45316477456B484F41316E64484742577A2E3162785353526B7554584647562F")
	got, err := cachingSHA2Hash("hashcat", salt, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if want := "$A$005$" + string(salt) + string(digest); got != want {
		t.Fatalf("cachingSHA2Hash(hashcat) = %q, want %q", got, want)
	}
	// A generated salt: 20 letters or digits, fresh each time.
	a, err := cachingSHA2Hash("pw", nil, 5000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cachingSHA2Hash("pw", nil, 5000)
	if !regexp.MustCompile(`^\$A\$005\$[A-Za-z0-9]{20}[./0-9A-Za-z]{43}$`).MatchString(a) || a == b {
		t.Fatalf("generated hashes %q and %q: wrong form or same salt", a, b)
	}
	if h, _ := cachingSHA2Hash("pw", nil, 12000); !strings.HasPrefix(h, "$A$012$") {
		t.Fatalf("12000 rounds written as %.7s", h)
	}
	for _, rounds := range []int{4000, 5500, 1000000} {
		if _, err := cachingSHA2Hash("pw", nil, rounds); err == nil {
			t.Errorf("%d rounds accepted", rounds)
		}
	}
}
