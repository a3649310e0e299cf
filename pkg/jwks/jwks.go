// Package jwks serves the verification keys of a JWT signing-key secret that
// the jwtkeys rotation function maintains, and signs with its current key.
//
// An Accessor reads the AWSCURRENT, AWSPENDING (while a rotation is in
// progress) and AWSPREVIOUS versions of the secret. The JWKS of AWSCURRENT
// and AWSPENDING and the own key of AWSPREVIOUS together hold the public
// keys of the current, pending and previous keys, and of the retired keys
// that were within the function's grace period (GRACE_PERIOD) when
// AWSCURRENT was created, so
// a verifier that uses the Accessor accepts tokens signed with the pending
// key before it becomes current, and tokens signed with an older key until
// they age out. A token whose kid is unknown makes the Accessor read the
// secret again once before it is refused.
//
//	acc, err := jwks.New(jwks.Options{SecretID: arn, Secrets: secretsmanager.NewFromConfig(cfg)})
//	http.Handle("/.well-known/jwks.json", acc)          // publish the public keys
//	token, err := acc.Sign(ctx, []byte(`{"sub":"42"}`)) // on the issuer
//	payload, err := acc.Verify(ctx, token)              // on a verifier
//
// An Accessor is safe for concurrent use.
package jwks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/go-jose/go-jose/v4"
	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// SecretsAPI is the Secrets Manager call an Accessor makes;
// *secretsmanager.Client satisfies it.
type SecretsAPI interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Options configure an Accessor.
type Options struct {
	// SecretID is the ARN or name of the JWT key secret.
	SecretID string
	Secrets  SecretsAPI
	// TTL is how long keys are used before the secret is read again.
	// Default 5 minutes.
	TTL time.Duration
	// MinRefresh is the least time between two reads caused by unknown
	// kids, so that forged tokens cannot flood Secrets Manager. Default 1s.
	MinRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Errors of verification; test with errors.Is.
var (
	ErrUnknownKey = errors.New("token signed with a key that is not in the JWKS")
	ErrNoKey      = errors.New("the secret holds no signing key yet")
	ErrBadToken   = errors.New("invalid token")
)

// Accessor holds the keys of one secret.
type Accessor struct {
	opt Options

	mu          sync.Mutex
	set         jose.JSONWebKeySet
	current     Document
	loaded      time.Time
	lastRefresh time.Time
}

// New returns an Accessor. It reads nothing until first used.
func New(opt Options) (*Accessor, error) {
	if opt.SecretID == "" {
		return nil, errors.New("jwks: no SecretID")
	}
	if opt.Secrets == nil {
		return nil, errors.New("jwks: no Secrets Manager client")
	}
	if opt.TTL <= 0 {
		opt.TTL = 5 * time.Minute
	}
	if opt.MinRefresh <= 0 {
		opt.MinRefresh = time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Accessor{opt: opt}, nil
}

// KeySet returns the public keys that verifiers accept.
func (a *Accessor) KeySet(ctx context.Context) (jose.JSONWebKeySet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.loadIfStale(ctx); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), a.set.Keys...)}, nil
}

// Key returns the public key kid, reading the secret again if it is unknown.
func (a *Accessor) Key(ctx context.Context, kid string) (jose.JSONWebKey, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.loadIfStale(ctx); err != nil {
		return jose.JSONWebKey{}, err
	}
	if k := a.set.Key(kid); len(k) > 0 {
		return k[0], nil
	}
	if a.opt.Now().Sub(a.lastRefresh) >= a.opt.MinRefresh {
		if err := a.load(ctx); err != nil {
			return jose.JSONWebKey{}, err
		}
		if k := a.set.Key(kid); len(k) > 0 {
			return k[0], nil
		}
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: kid %q of %s (aged out, or not a key of this secret)", ErrUnknownKey, kid, a.opt.SecretID)
}

// Refresh reads the secret now.
func (a *Accessor) Refresh(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.load(ctx)
}

// Verify checks a compact JWS (a JWT) against the key its kid names and
// returns the payload. It checks the signature only: claims such as exp and
// aud are the caller's to check.
func (a *Accessor) Verify(ctx context.Context, token string) ([]byte, error) {
	return VerifyWith(token, func(kid string) (jose.JSONWebKey, error) { return a.Key(ctx, kid) })
}

// VerifyWith checks a compact JWS with the public key that lookup returns
// for its kid. The token's alg must be the key's alg.
func VerifyWith(token string, lookup func(kid string) (jose.JSONWebKey, error)) ([]byte, error) {
	algs := make([]jose.SignatureAlgorithm, len(Algorithms))
	for i, a := range Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrBadToken, len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid in the header", ErrBadToken)
	}
	key, err := lookup(h.KeyID)
	if err != nil {
		return nil, err
	}
	if h.Algorithm != key.Algorithm {
		return nil, fmt.Errorf("%w: alg %s, but key %s is for %s", ErrBadToken, h.Algorithm, h.KeyID, key.Algorithm)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("%w: signature of key %s: %w", ErrBadToken, h.KeyID, err)
	}
	return payload, nil
}

// Sign signs payload with the AWSCURRENT key as a compact JWS of type JWT.
func (a *Accessor) Sign(ctx context.Context, payload []byte) (string, error) {
	a.mu.Lock()
	if err := a.loadIfStale(ctx); err != nil {
		a.mu.Unlock()
		return "", err
	}
	cur := a.current
	a.mu.Unlock()
	if cur.Empty() {
		return "", fmt.Errorf("jwks %s: AWSCURRENT: %w (it is the bootstrap value {}: rotate the secret once)", a.opt.SecretID, ErrNoKey)
	}
	return SignWith(cur, payload)
}

// SignWith signs payload with the private key of doc.
func SignWith(doc Document, payload []byte) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(doc.Alg), Key: doc.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("signer for key %s: %w", doc.KID, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign with key %s: %w", doc.KID, err)
	}
	return jws.CompactSerialize()
}

// ServeHTTP serves the key set as application/jwk-set+json.
func (a *Accessor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	set, err := a.KeySet(r.Context())
	if err != nil {
		http.Error(w, "key set unavailable", http.StatusServiceUnavailable)
		return
	}
	body, err := json.Marshal(set)
	if err != nil {
		http.Error(w, "key set unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(body)
}

func (a *Accessor) loadIfStale(ctx context.Context) error {
	if a.loaded.IsZero() || a.opt.Now().Sub(a.loaded) >= a.opt.TTL {
		return a.load(ctx)
	}
	return nil
}

func (a *Accessor) load(ctx context.Context) error {
	a.lastRefresh = a.opt.Now()
	var set jose.JSONWebKeySet
	seen := map[string]bool{}
	var current Document
	for _, stage := range []string{"AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"} {
		doc, ok, err := a.read(ctx, stage)
		if err != nil {
			return err
		}
		if !ok {
			if stage == "AWSCURRENT" {
				return fmt.Errorf("jwks %s: no AWSCURRENT version", a.opt.SecretID)
			}
			continue
		}
		if stage == "AWSCURRENT" {
			current = doc
		}
		keys := doc.JWKS.Keys
		if stage == "AWSPREVIOUS" {
			// Only its own key: the keys it carries aged out or are
			// carried by AWSCURRENT too.
			keys = doc.JWKS.Key(doc.KID)
		}
		for _, k := range keys {
			if !seen[k.KeyID] {
				seen[k.KeyID] = true
				set.Keys = append(set.Keys, k)
			}
		}
	}
	a.set, a.current, a.loaded = set, current, a.opt.Now()
	return nil
}

func (a *Accessor) read(ctx context.Context, stage string) (Document, bool, error) {
	val, ok, err := secretstore.ValueAtStage(ctx, a.opt.Secrets, a.opt.SecretID, stage)
	if err != nil {
		return Document{}, false, fmt.Errorf("jwks: %w", err)
	}
	if !ok {
		return Document{}, false, nil
	}
	doc, err := ParseDocument(val)
	if err != nil {
		return Document{}, false, fmt.Errorf("jwks %s: %s: %w", a.opt.SecretID, stage, err)
	}
	return doc, true, nil
}
