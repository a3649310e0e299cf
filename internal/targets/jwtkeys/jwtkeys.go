// Package jwtkeys is the rotation target for asymmetric JWT signing keys.
// Each rotation makes a new private key (ES256 by default; RS256 or EdDSA),
// stores it as a JWK whose kid is the new version id, and publishes with it a
// JWKS holding its public key, the current key's and those of retired keys
// within the grace period; see pkg/jwks for the format and the consumer
// side. Set has no system to change; Test signs a probe token with the
// pending key and verifies it through the pending JWKS.
//
// It is configured from the environment of the Lambda function:
//
//	Variable       Default  Meaning
//	JWT_ALG        ES256    ES256 (ECDSA P-256), RS256 (RSA PKCS#1 v1.5) or EdDSA (Ed25519)
//	RSA_KEY_BITS   2048     2048 or 3072, for RS256 only
//	GRACE_PERIOD   1d       how long a retired public key stays in new versions' JWKS
//	                        beyond the one rotation that always keeps it: 1d or a Go
//	                        duration, 1h..3650d
package jwtkeys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/secrets-rotation/secrets-rotation/internal/grace"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/pkg/jwks"
)

// DefaultGrace is the default GRACE_PERIOD: tokens live minutes to hours, and
// the key of the version before is kept for a whole rotation regardless.
const DefaultGrace = 24 * time.Hour

// Config is the configuration of a Target.
type Config struct {
	Alg     string
	RSABits int
	Grace   time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{Alg: jwks.ES256}
	if s := strings.TrimSpace(getenv("JWT_ALG")); s != "" {
		switch s {
		case jwks.ES256, jwks.RS256, jwks.EdDSA:
			c.Alg = s
		default:
			return Config{}, fmt.Errorf("JWT_ALG=%q is not one of %s", s, strings.Join(jwks.Algorithms, ", "))
		}
	}
	s := strings.TrimSpace(getenv("RSA_KEY_BITS"))
	if c.Alg == jwks.RS256 {
		c.RSABits = 2048
		if s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || (n != 2048 && n != 3072) {
				return Config{}, fmt.Errorf("RSA_KEY_BITS=%q must be 2048 or 3072", s)
			}
			c.RSABits = n
		}
	} else if s != "" {
		return Config{}, fmt.Errorf("RSA_KEY_BITS is set but JWT_ALG=%s: it applies to RS256 only", c.Alg)
	}
	g, err := grace.FromEnv(getenv, "GRACE_PERIOD", DefaultGrace)
	if err != nil {
		return Config{}, err
	}
	c.Grace = g
	return c, nil
}

// Describe returns the configuration as log attributes; none of it is secret.
func (c Config) Describe() []slog.Attr {
	return []slog.Attr{
		slog.String("jwt_alg", c.Alg),
		slog.Int("rsa_key_bits", c.RSABits),
		slog.String("grace_period", grace.Format(c.Grace)),
	}
}

func (c Config) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

// Target rotates JWT signing-key secrets.
type Target struct{ cfg Config }

var _ rotation.Target = (*Target)(nil)

// New returns a Target for cfg, which should come from ConfigFromEnv.
func New(cfg Config) *Target { return &Target{cfg: cfg} }

// Create makes a new key pair. The new version's JWKS holds its public key,
// the current key's, and those of retired keys within the grace period.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	cur, err := jwks.ParseDocument(req.Current.Value)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("AWSCURRENT version %s: %w (a new secret starts as {})", req.Current.ID, err)
	}
	priv, err := t.generate()
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	now := t.cfg.now()
	doc := jwks.Document{
		KID:        req.Secret.Token,
		Alg:        t.cfg.Alg,
		Created:    now,
		PrivateKey: jose.JSONWebKey{Key: priv, KeyID: req.Secret.Token, Algorithm: t.cfg.Alg, Use: "sig"},
	}
	doc.JWKS.Keys = []jose.JSONWebKey{doc.PrivateKey.Public()}
	var kept, dropped []string
	if !cur.Empty() {
		// The current key is always kept: it becomes AWSPREVIOUS.
		retired := []jwks.KeyInfo{{KID: cur.KID, Alg: cur.Alg, Created: cur.Created, Retired: now}}
		for _, p := range cur.Previous {
			if grace.Keep(p.Retired, now, t.cfg.Grace) && len(retired) < grace.MaxRetired {
				retired = append(retired, p)
			} else {
				dropped = append(dropped, p.KID)
			}
		}
		for _, p := range retired {
			k := cur.JWKS.Key(p.KID)
			if len(k) == 0 {
				return rotation.CreateResponse{}, fmt.Errorf("AWSCURRENT version %s: its JWKS lacks the public key %s", req.Current.ID, p.KID)
			}
			doc.JWKS.Keys = append(doc.JWKS.Keys, k[0])
			doc.Previous = append(doc.Previous, p)
			kept = append(kept, p.KID)
		}
	}
	value, err := json.Marshal(doc)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("encode JWT key document: %w", err)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "signing key generated",
		slog.String("kid", doc.KID),
		slog.String("alg", doc.Alg),
		slog.Any("carried_kids", kept),
		slog.Any("aged_out_kids", dropped),
		slog.String("grace_period", grace.Format(t.cfg.Grace)))
	return rotation.CreateResponse{Value: string(value)}, nil
}

func (t *Target) generate() (crypto.Signer, error) {
	switch t.cfg.Alg {
	case jwks.ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jwks.RS256:
		return rsa.GenerateKey(rand.Reader, t.cfg.RSABits)
	case jwks.EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unknown algorithm %q (want one of %s)", t.cfg.Alg, strings.Join(jwks.Algorithms, ", "))
}

// Set has no system to change: verifiers read the keys from the secret. It
// checks that the pending version is a well-formed document, so that a
// damaged value stops the rotation before Test.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	if _, err := jwks.ParseDocument(pv.Value); err != nil {
		return fmt.Errorf("pending version: %w", err)
	}
	return nil
}

// Test signs a probe token with the pending private key and verifies it
// through the pending JWKS, and checks that the pending JWKS still holds the
// current public key, so that tokens signed before the switch still verify.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	doc, err := jwks.ParseDocument(pv.Value)
	if err != nil {
		return fmt.Errorf("pending version: %w", err)
	}
	if doc.Empty() {
		return fmt.Errorf("pending version holds no key, want the key %s of this rotation", req.Secret.Token)
	}
	if doc.KID != req.Secret.Token {
		if err := madeBy(ctx, req, doc); err != nil {
			return err
		}
	}
	probe, err := json.Marshal(map[string]any{"iss": "secrets-rotation", "sub": "probe", "jti": req.Secret.Token, "iat": t.cfg.now().Unix()})
	if err != nil {
		return err
	}
	token, err := jwks.SignWith(doc, probe)
	if err != nil {
		return fmt.Errorf("sign probe token with pending key: %w", err)
	}
	payload, err := jwks.VerifyWith(token, func(kid string) (jose.JSONWebKey, error) {
		if k := doc.JWKS.Key(kid); len(k) > 0 {
			return k[0], nil
		}
		return jose.JSONWebKey{}, fmt.Errorf("%w: kid %s is not in the pending JWKS", jwks.ErrUnknownKey, kid)
	})
	if err != nil {
		return fmt.Errorf("verify probe token through the pending JWKS: %w", err)
	}
	if string(payload) != string(probe) {
		return errors.New("verify probe token: payload differs")
	}
	cv, err := req.Versions.Current(ctx)
	if err != nil {
		return err
	}
	cur, err := jwks.ParseDocument(cv.Value)
	if err != nil {
		return fmt.Errorf("AWSCURRENT version %s: %w", cv.ID, err)
	}
	if !cur.Empty() && len(doc.JWKS.Key(cur.KID)) == 0 {
		return fmt.Errorf("pending JWKS lacks the current key %s: tokens signed with it would stop verifying", cur.KID)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "pending signing key works",
		slog.String("kid", doc.KID), slog.String("alg", doc.Alg), slog.Int("jwks_keys", len(doc.JWKS.Keys)))
	return nil
}

// madeBy checks a pending key that is not this rotation's own: after a
// rollback (rotationctl rollback) an older key is primary again, and it
// must be the key that the version its kid names made for this secret.
func madeBy(ctx context.Context, req *rotation.StepRequest, doc jwks.Document) error {
	v, err := req.Versions.ByID(ctx, doc.KID)
	if err != nil {
		return fmt.Errorf("pending version holds key %s, neither this rotation's (%s) nor that of a readable version of this secret: %w", doc.KID, req.Secret.Token, err)
	}
	made, err := jwks.ParseDocument(v.Value)
	if err != nil || made.KID != doc.KID {
		return fmt.Errorf("pending version holds key %s, but version %s of this secret does not hold it", doc.KID, doc.KID)
	}
	mp, dp := made.PrivateKey.Public(), doc.PrivateKey.Public()
	a, errA := mp.Thumbprint(crypto.SHA256)
	b, errB := dp.Thumbprint(crypto.SHA256)
	if errA != nil || errB != nil || string(a) != string(b) {
		return fmt.Errorf("pending key %s differs from the key version %s made", doc.KID, doc.KID)
	}
	return nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
