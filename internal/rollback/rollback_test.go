package rollback_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rollback"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func js(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func refusal(t *testing.T, err error, want string) {
	t.Helper()
	var r *rollback.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal saying %q, got %v", want, err)
	}
	if !strings.Contains(r.Error(), want) || !strings.Contains(r.Error(), "nothing changed") {
		t.Errorf("refusal %q does not say %q", r.Error(), want)
	}
}

func TestKindOf(t *testing.T) {
	for v, want := range map[string]rollback.Kind{
		"sk_live_abc":     rollback.Generic,
		`{"api_key":"x"}`: rollback.Generic,
		`{"engine":"postgres","host":"db","username":"app","password":"p"}`:           rollback.Database,
		`{"userName":"u","accessKeyId":"AKIAAAAAAAAAAAAAAAAA","secretAccessKey":"s"}`: rollback.IAMKey,
		`{"commonName":"a.example","certificate":"x","privateKey":"y"}`:               rollback.TLSCert,
		`{}`: rollback.Generic,
	} {
		if got := rollback.KindOf(v); got != want {
			t.Errorf("KindOf(%.30q) = %s, want %s", v, got, want)
		}
	}
}

func db(user, pw, master string) map[string]any {
	m := map[string]any{"engine": "postgres", "host": "db.internal", "port": 5432, "username": user, "password": pw}
	if master != "" {
		m["masterarn"] = master
	}
	return m
}

func TestDatabaseRefusals(t *testing.T) {
	ctx := context.Background()
	master := "arn:aws:secretsmanager:us-east-1:000000000000:secret:master-AbCdEf"
	// Alternating users: a version that names the user AWSCURRENT uses.
	_, err := rollback.Make(ctx, rollback.Request{
		Current: rollback.Version{ID: "v3", Value: js(t, db("app_clone", "p3", master))},
		Target:  rollback.Version{ID: "v1", Value: js(t, db("app_clone", "p1", master))},
	}, nil)
	refusal(t, err, "the user that AWSCURRENT uses")
	// ... while the other user is fine.
	p, err := rollback.Make(ctx, rollback.Request{
		Current: rollback.Version{ID: "v3", Value: js(t, db("app_clone", "p3", master))},
		Target:  rollback.Version{ID: "v2", Value: js(t, db("app", "p2", master))},
	}, nil)
	if err != nil || p.Kind != rollback.Database || p.Value != js(t, db("app", "p2", master)) {
		t.Errorf("alternating rollback to the other user: %+v, %v", p, err)
	}
	// Single user: another user or another server.
	_, err = rollback.Make(ctx, rollback.Request{
		Current: rollback.Version{ID: "v2", Value: js(t, db("app", "p2", ""))},
		Target:  rollback.Version{ID: "v1", Value: js(t, db("admin", "p1", ""))},
	}, nil)
	refusal(t, err, "names user admin")
	other := db("app", "p1", "")
	other["host"] = "attacker.example"
	_, err = rollback.Make(ctx, rollback.Request{
		Current: rollback.Version{ID: "v2", Value: js(t, db("app", "p2", ""))},
		Target:  rollback.Version{ID: "v1", Value: js(t, other)},
	}, nil)
	refusal(t, err, "another server")
	_, err = rollback.Make(ctx, rollback.Request{
		Current: rollback.Version{ID: "v2", Value: js(t, db("app", "p2", ""))},
		Target:  rollback.Version{ID: "v1", Value: "plain-old-password"},
	}, nil)
	refusal(t, err, "holds a generic value but AWSCURRENT holds a database value")
}

func certSecret(t *testing.T, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "a.example"}, DNSNames: []string{"a.example"},
		NotBefore: notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return js(t, map[string]string{"commonName": "a.example", "certificate": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), "privateKey": "(key)"})
}

func TestTLSCertExpiredIsRefused(t *testing.T) {
	now := time.Now()
	cur := rollback.Version{ID: "v2", Value: certSecret(t, now.Add(60*24*time.Hour))}
	_, err := rollback.Make(context.Background(), rollback.Request{Current: cur, Target: rollback.Version{ID: "v1", Value: certSecret(t, now.Add(-time.Hour))}, Now: now}, nil)
	refusal(t, err, "expired on")
	p, err := rollback.Make(context.Background(), rollback.Request{Current: cur, Target: rollback.Version{ID: "v1", Value: certSecret(t, now.Add(20*24*time.Hour))}, Now: now}, nil)
	if err != nil || p.Kind != rollback.TLSCert {
		t.Errorf("a valid older certificate: %+v %v", p, err)
	}
}

// TestIAMKeyGoneOrInactiveIsRefused asks the emulator's IAM about the old
// key: deleted or inactive, it is refused; active, it is planned.
func TestIAMKeyGoneOrInactiveIsRefused(t *testing.T) {
	ctx := context.Background()
	api := iam.NewFromConfig(testbed.AWSConfig(t))
	user := "rollback-" + localrun.NewToken()[:8]
	if _, err := api.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for range 2 {
		k, err := api.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, aws.ToString(k.AccessKey.AccessKeyId))
	}
	t.Cleanup(func() {
		for _, k := range keys {
			api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(k)})
		}
		api.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(user)})
	})
	val := func(id string) string {
		return js(t, map[string]string{"userName": user, "accessKeyId": id, "secretAccessKey": "(secret)"})
	}
	req := rollback.Request{Current: rollback.Version{ID: "v2", Value: val(keys[1])}, Target: rollback.Version{ID: "v1", Value: val(keys[0])}}
	if p, err := rollback.Make(ctx, req, api); err != nil || p.Kind != rollback.IAMKey {
		t.Fatalf("an active old key: %+v %v", p, err)
	}
	if _, err := api.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(keys[0]), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	_, err := rollback.Make(ctx, req, api)
	refusal(t, err, "is Inactive")
	if _, err := api.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(keys[0])}); err != nil {
		t.Fatal(err)
	}
	_, err = rollback.Make(ctx, req, api)
	refusal(t, err, "no longer exists")
}
