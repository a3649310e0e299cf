package keyring

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func testKey(kid string) Key {
	return Key{KID: kid, Alg: Algorithm, KMSKeyARN: "arn:aws:kms:us-east-1:123456789012:key/x", Created: time.Unix(0, 0).UTC(),
		Material: bytes.Repeat([]byte{0x5a}, KeySize), WrappedKey: []byte{1, 2, 3}}
}

func TestSealOpen(t *testing.T) {
	k := testKey("kid-1")
	ct, err := Seal(k, []byte("hello"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if kid, err := KIDOf(ct); err != nil || kid != "kid-1" {
		t.Fatalf("KIDOf: %q %v", kid, err)
	}
	if pt, err := Open(k, ct, []byte("aad")); err != nil || string(pt) != "hello" {
		t.Fatalf("Open: %q %v", pt, err)
	}
	if _, err := Open(k, ct, []byte("other")); err == nil {
		t.Error("opened with other associated data")
	}
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	if _, err := Open(k, tampered, []byte("aad")); err == nil {
		t.Error("opened a tampered ciphertext")
	}
	// Renaming the kid in the header breaks authentication too.
	other := testKey("kid-2")
	swapped := bytes.Replace(bytes.Clone(ct), []byte("kid-1"), []byte("kid-2"), 1)
	if _, err := Open(other, swapped, []byte("aad")); err == nil {
		t.Error("opened a ciphertext whose kid was swapped")
	}
	ct2, _ := Seal(k, []byte("hello"), []byte("aad"))
	if bytes.Equal(ct, ct2) {
		t.Error("two seals of the same message are equal: nonce reused")
	}
	for _, bad := range [][]byte{nil, {2, 1, 'a'}, {1, 0}, {1, 5, 'a'}} {
		if _, err := KIDOf(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("KIDOf(%v): %v", bad, err)
		}
	}
}

func TestParseDocument(t *testing.T) {
	d, err := ParseDocument(" {} ")
	if err != nil || !d.Empty() {
		t.Fatalf("{}: %v %v", d, err)
	}
	for value, want := range map[string]string{
		"":                                "not a JSON object",
		"[]":                              "wrong type",
		`"s3cret"`:                        "wrong type",
		`{"password":"s3cret"}`:           "no kid",
		`{"kid":"k","alg":"AES-128"}`:     `alg "AES-128"`,
		`{"kid":"k","alg":"AES-256-GCM"}`: "neither key nor wrapped_key",
		`{"kid":"k","alg":"AES-256-GCM","key":"AAAA"}`:         "is 3 bytes",
		`{"kid":"k","alg":"AES-256-GCM","wrapped_key":"AAAA"}`: "no kms_key_arn",
		`{} {}`:          "data after",
		`{"kid":"s3cret`: "not a JSON object",
		`{"kid":s3cret}`: "invalid JSON at byte",
	} {
		_, err := ParseDocument(value)
		if !errors.Is(err, ErrNotDataKey) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", value, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error quotes the value", value)
		}
	}
}

func TestPrintingRedacts(t *testing.T) {
	d := Document{Key: testKey("kid-1"), Previous: []Key{testKey("kid-0")}}
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v", d, d, d), fmt.Sprint(d.Key), fmt.Sprintf("%+v", d.Previous)} {
		if strings.Contains(s, "90 90") || strings.Contains(s, "5a5a") || strings.Contains(s, "WlpaWl") || strings.Contains(s, "[90") {
			t.Errorf("printed key material: %s", s)
		}
	}
}
