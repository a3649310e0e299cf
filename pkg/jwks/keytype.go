package jwks

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"

	"github.com/go-jose/go-jose/v4"
)

// keyType names the type of a public JWK: EC-P256, RSA, OKP or "".
func keyType(k jose.JSONWebKey) string {
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() {
			return "EC-P256"
		}
	case *rsa.PublicKey:
		if pub.N.BitLen() >= 2048 {
			return "RSA"
		}
	case ed25519.PublicKey:
		return "OKP"
	}
	return ""
}
