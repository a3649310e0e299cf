package jwks_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/go-jose/go-jose/v4"

	"github.com/secrets-rotation/secrets-rotation/pkg/jwks"
)

// An issuer and its verifiers share the secret that functions/jwtkeys
// rotates: the Accessor signs with AWSCURRENT's key and publishes the public
// keys of the current, pending and previous keys. (It needs the secret, so
// it has no output here.)
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	acc, err := jwks.New(jwks.Options{
		SecretID: "arn:aws:secretsmanager:us-east-1:111122223333:secret:auth/jwt-signing-AbCdEf",
		Secrets:  secretsmanager.NewFromConfig(cfg),
	})
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/.well-known/jwks.json", acc) // the public keys, for verifiers
	token, err := acc.Sign(ctx, []byte(`{"sub":"42"}`))
	if err != nil {
		log.Fatal(err)
	}
	payload, err := acc.Verify(ctx, token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", payload)
}

// SignWith and VerifyWith work with one document's keys, without Secrets
// Manager: the token's header carries the kid that finds the public key.
func ExampleSignWith() {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	// The shape of a version of the secret, made here instead of read.
	doc := jwks.Document{
		KID: "k1", Alg: jwks.EdDSA,
		PrivateKey: jose.JSONWebKey{Key: priv, KeyID: "k1", Algorithm: jwks.EdDSA, Use: "sig"},
		JWKS:       jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: jwks.EdDSA, Use: "sig"}}},
	}
	token, err := jwks.SignWith(doc, []byte(`{"sub":"42"}`))
	if err != nil {
		log.Fatal(err)
	}
	payload, err := jwks.VerifyWith(token, func(kid string) (jose.JSONWebKey, error) {
		if keys := doc.JWKS.Key(kid); len(keys) == 1 {
			return keys[0], nil
		}
		return jose.JSONWebKey{}, fmt.Errorf("unknown kid %q", kid)
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", payload)
	fmt.Println(doc) // names the key, never its material
	// Output:
	// {"sub":"42"}
	// JWT key document k1 (EdDSA) with 1 public keys
}

// ParseDocument reads a version of the secret; "{}" is the value a secret
// starts with, before its first rotation.
func ExampleParseDocument() {
	doc, err := jwks.ParseDocument("{}")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(doc.Empty())
	// Output: true
}
