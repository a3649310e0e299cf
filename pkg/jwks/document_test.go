package jwks

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func testDoc(t *testing.T, kid string) Document {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: ES256, Use: "sig"}
	return Document{KID: kid, Alg: ES256, PrivateKey: jwk, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}}
}

func TestDocumentRoundTripAndVerify(t *testing.T) {
	d := testDoc(t, "k1")
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDocument(string(b))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := SignWith(got, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(kid string) (jose.JSONWebKey, error) {
		if k := got.JWKS.Key(kid); len(k) > 0 {
			return k[0], nil
		}
		return jose.JSONWebKey{}, ErrUnknownKey
	}
	if p, err := VerifyWith(tok, lookup); err != nil || string(p) != "payload" {
		t.Fatalf("verify: %q %v", p, err)
	}
	// A token of another key with the same kid fails.
	other, _ := SignWith(testDoc(t, "k1"), []byte("payload"))
	if _, err := VerifyWith(other, lookup); !errors.Is(err, ErrBadToken) {
		t.Fatalf("token of another key: %v", err)
	}
	// alg "none" and HMAC are refused.
	if _, err := VerifyWith("eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.cGF5bG9hZA.", lookup); !errors.Is(err, ErrBadToken) {
		t.Fatalf("alg none: %v", err)
	}
}

func TestParseDocumentErrors(t *testing.T) {
	d := testDoc(t, "k1")
	withPrivate := d
	withPrivate.JWKS = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{d.PrivateKey}}
	otherKID := d
	otherKID.KID = "k2"
	noOwn := testDoc(t, "k1")
	noOwn.JWKS = testDoc(t, "k9").JWKS
	enc := func(d Document) string {
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for name, c := range map[string]struct{ value, want string }{
		"not JSON":        {"s3cret", "not a JSON object"},
		"other JSON":      {`{"password":"s3cret"}`, "no kid"},
		"HS256":           {`{"kid":"k","alg":"HS256"}`, `"HS256"`},
		"no jwk":          {`{"kid":"k","alg":"ES256"}`, "no valid private JWK"},
		"bad jwk":         {`{"kid":"k","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","d":"s3cret"}}`, `"jwk"`},
		"private in jwks": {enc(withPrivate), "private key"},
		"kid mismatch":    {enc(otherKID), "differs"},
		"own key missing": {enc(noOwn), "0 keys with the document's kid"},
	} {
		_, err := ParseDocument(c.value)
		if !errors.Is(err, ErrNotJWTKeys) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error quotes the value", name)
		}
	}
	if d, err := ParseDocument("{}"); err != nil || !d.Empty() {
		t.Fatalf("{}: %v", err)
	}
}

func TestPrintingRedacts(t *testing.T) {
	d := testDoc(t, "k1")
	raw, _ := json.Marshal(d.PrivateKey)
	var m map[string]string
	_ = json.Unmarshal(raw, &m)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d)} {
		if strings.Contains(s, m["d"]) || strings.Contains(s, "D:") {
			t.Errorf("printed the private key: %s", s)
		}
	}
}
