package jwks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The signing algorithms the jwtkeys function makes keys for.
const (
	ES256 = string(jose.ES256)
	RS256 = string(jose.RS256)
	EdDSA = string(jose.EdDSA)
)

// Algorithms lists the supported algorithms.
var Algorithms = []string{ES256, RS256, EdDSA}

// KeyInfo describes a retired key that a document's JWKS still carries.
type KeyInfo struct {
	KID     string    `json:"kid"`
	Alg     string    `json:"alg"`
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired"`
}

// Document is the JSON value of a JWT signing-key secret version: the
// version's private key as a JWK, and the public JWKS that verifiers use,
// holding this version's public key and those of the retired keys within the
// grace period (Previous says when each was retired). Its String and GoString
// methods print no key material.
//
// The empty object "{}" is a valid document with no key: a secret created
// with it is ready for its first rotation.
type Document struct {
	KID     string    `json:"kid,omitempty"`
	Alg     string    `json:"alg,omitempty"`
	Created time.Time `json:"created,omitzero"`
	// PrivateKey is the private JWK, with kid, alg and use "sig".
	PrivateKey jose.JSONWebKey `json:"jwk,omitzero"`
	// JWKS holds public keys only, newest first.
	JWKS     jose.JSONWebKeySet `json:"jwks,omitzero"`
	Previous []KeyInfo          `json:"previous,omitempty"`
}

// String names the document without key material.
func (d Document) String() string {
	if d.Empty() {
		return "empty JWT key document"
	}
	return fmt.Sprintf("JWT key document %s (%s) with %d public keys", d.KID, d.Alg, len(d.JWKS.Keys))
}

// GoString names the document without key material, for %#v.
func (d Document) GoString() string { return d.String() }

// Empty reports whether the document holds no key (the "{}" bootstrap value).
func (d Document) Empty() bool { return d.KID == "" && len(d.JWKS.Keys) == 0 }

// ErrNotJWTKeys reports a secret value that is not a JWT key document.
var ErrNotJWTKeys = errors.New("secret is not a JWT key document")

// ParseDocument parses and checks a secret value: the private key matches
// its kid and algorithm, and the JWKS holds public keys only, this version's
// among them. Its errors never quote the value.
func ParseDocument(value string) (Document, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(value), &raw); err != nil || raw == nil {
		return Document{}, fmt.Errorf("%w: not a JSON object", ErrNotJWTKeys)
	}
	if len(raw) == 0 {
		return Document{}, nil
	}
	var d Document
	dec := json.NewDecoder(bytes.NewReader([]byte(value)))
	if err := dec.Decode(&d); err != nil {
		// go-jose's and encoding/json's messages may quote key material:
		// say only which part failed.
		return Document{}, fmt.Errorf("%w: %s", ErrNotJWTKeys, failedPart(raw))
	}
	if err := d.check(); err != nil {
		return Document{}, err
	}
	return d, nil
}

// failedPart names the first field that does not decode on its own.
func failedPart(raw map[string]json.RawMessage) string {
	var k jose.JSONWebKey
	if v, ok := raw["jwk"]; ok && json.Unmarshal(v, &k) != nil {
		return `field "jwk" is not a supported JWK`
	}
	var s jose.JSONWebKeySet
	if v, ok := raw["jwks"]; ok && json.Unmarshal(v, &s) != nil {
		return `field "jwks" is not a supported JWK set`
	}
	return "a field has the wrong type"
}

func (d Document) check() error {
	switch {
	case d.KID == "":
		return fmt.Errorf("%w: no kid (the only value without a key is the empty object {})", ErrNotJWTKeys)
	case !slices.Contains(Algorithms, d.Alg):
		return fmt.Errorf("%w: key %s has alg %q, want one of %s", ErrNotJWTKeys, d.KID, d.Alg, strings.Join(Algorithms, ", "))
	case d.PrivateKey.Key == nil || d.PrivateKey.IsPublic() || !d.PrivateKey.Valid():
		return fmt.Errorf("%w: key %s has no valid private JWK", ErrNotJWTKeys, d.KID)
	case d.PrivateKey.KeyID != d.KID || d.PrivateKey.Algorithm != d.Alg:
		return fmt.Errorf("%w: the private JWK's kid or alg differs from the document's (%s, %s)", ErrNotJWTKeys, d.KID, d.Alg)
	}
	if err := checkAlg(d.PrivateKey); err != nil {
		return err
	}
	for _, k := range d.JWKS.Keys {
		if !k.IsPublic() {
			return fmt.Errorf("%w: the JWKS holds a private key (%s): it must hold public keys only", ErrNotJWTKeys, k.KeyID)
		}
		if err := checkAlg(k); err != nil {
			return err
		}
	}
	own := d.JWKS.Key(d.KID)
	if len(own) != 1 {
		return fmt.Errorf("%w: the JWKS holds %d keys with the document's kid %s, want 1", ErrNotJWTKeys, len(own), d.KID)
	}
	return nil
}

// checkAlg makes sure a key's type fits its algorithm, so that no verifier
// is ever asked to check, say, an HMAC with an RSA modulus.
func checkAlg(k jose.JSONWebKey) error {
	pub := k.Public()
	ok := false
	switch k.Algorithm {
	case ES256:
		ok = pub.Valid() && keyType(pub) == "EC-P256"
	case RS256:
		ok = pub.Valid() && keyType(pub) == "RSA"
	case EdDSA:
		ok = pub.Valid() && keyType(pub) == "OKP"
	}
	if !ok {
		return fmt.Errorf("%w: key %s is not a valid %q key", ErrNotJWTKeys, k.KeyID, k.Algorithm)
	}
	return nil
}
