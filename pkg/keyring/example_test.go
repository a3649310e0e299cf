package keyring_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

// A service keeps a Keyring for the data-key secret that functions/datakey
// rotates: Encrypt uses AWSCURRENT's key, Decrypt any key still in its grace
// period. (It needs the secret, so it has no output here.)
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	kr, err := keyring.New(keyring.Options{
		SecretID: "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/data-key-AbCdEf",
		Secrets:  secretsmanager.NewFromConfig(cfg),
		KMS:      kms.NewFromConfig(cfg), // only needed with KEY_STORAGE=wrapped
	})
	if err != nil {
		log.Fatal(err)
	}
	ct, err := kr.Encrypt(ctx, []byte("card 4111"), []byte("customer 42"))
	if err != nil {
		log.Fatal(err)
	}
	pt, err := kr.Decrypt(ctx, ct, []byte("customer 42"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", pt)
}

// Seal and Open work with one key, without Secrets Manager: a ciphertext
// names the kid of the key that sealed it, so the right key can be found
// after a rotation.
func ExampleSeal() {
	key := keyring.Key{KID: "v1", Alg: keyring.Algorithm, Material: bytes.Repeat([]byte{7}, keyring.KeySize)}
	ct, err := keyring.Seal(key, []byte("card 4111"), []byte("customer 42"))
	if err != nil {
		log.Fatal(err)
	}
	kid, err := keyring.KIDOf(ct)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := keyring.Open(key, ct, []byte("customer 42"))
	if err != nil {
		log.Fatal(err)
	}
	_, err = keyring.Open(key, ct, []byte("customer 43"))
	fmt.Println(kid)
	fmt.Printf("%s\n", pt)
	fmt.Println("other aad refused:", err != nil)
	fmt.Println(key) // names the key, never its material
	// Output:
	// v1
	// card 4111
	// other aad refused: true
	// data key v1 (AES-256-GCM)
}

// ParseDocument reads a version of the secret; "{}" is the value a secret
// starts with, before its first rotation.
func ExampleParseDocument() {
	doc, err := keyring.ParseDocument("{}")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(doc.Empty(), len(doc.Keys()))
	// Output: true 0
}
