package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
	"github.com/secrets-rotation/secrets-rotation/pkg/jwks"
	"github.com/secrets-rotation/secrets-rotation/pkg/keyring"
)

// fn is a rotation function built for this machine, with its settings.
type fn struct {
	bin string
	env []string
}

func (f fn) args(t *testing.T, verb, arn string, extra ...string) []string {
	args := []string{verb, arn, "-bootstrap", f.bin, "-function-log", filepath.Join(t.TempDir(), "fn.log")}
	for _, e := range f.env {
		args = append(args, "-env", e)
	}
	return append(args, extra...)
}

func (f fn) rotate(t *testing.T, arn string) {
	t.Helper()
	mustCtl(t, f.args(t, "rotate", arn)...)
}

func (f fn) rollback(t *testing.T, arn string, extra ...string) string {
	t.Helper()
	return mustCtl(t, f.args(t, "rollback", arn, extra...)...)
}

func pgLogin(t *testing.T, s *dbsecret.Secret) error {
	st := dbtest.Settings(t)
	port, _ := strconv.Atoi(st["PG_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	c, err := postgres.Driver{}.Connect(context.Background(), dbsecret.Endpoint{Host: st["PG_HOST"], Port: port, DBName: "postgres", TLS: tlsCfg, Timeout: 5e9}, s.Username, s.Password)
	if err == nil {
		c.Close()
	}
	return err
}

func myLogin(t *testing.T, s *dbsecret.Secret) error {
	st := dbtest.Settings(t)
	port, _ := strconv.Atoi(st["MYSQL_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, st["MYSQL_HOST"], st["MYSQL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	c, err := mysql.Driver{}.Connect(context.Background(), dbsecret.Endpoint{Host: st["MYSQL_HOST"], Port: port, TLS: tlsCfg, Timeout: 5e9}, s.Username, s.Password)
	if err == nil {
		c.Close()
	}
	return err
}

func parseDB(t *testing.T, v string) *dbsecret.Secret {
	t.Helper()
	s, err := dbsecret.Parse(v, dbsecret.Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rollbackRestoresAPassword rotates twice, rolls back, and checks that the
// old AWSPREVIOUS is current and logs in, and whether the replaced current
// value still does (it must not, for a single user).
func rollbackRestoresAPassword(t *testing.T, f fn, arn string, login func(*testing.T, *dbsecret.Secret) error, replacedStillLogsIn bool) {
	t.Helper()
	em := testbed.Emulator(t)
	f.rotate(t, arn)
	f.rotate(t, arn)
	prev := testbed.ValueAt(t, em, arn, "AWSPREVIOUS")
	cur := parseDB(t, testbed.ValueAt(t, em, arn, "AWSCURRENT"))
	out := f.rollback(t, arn)
	if !strings.Contains(out, "kind    database") || !strings.Contains(out, "rollback succeeded") {
		t.Fatalf("rollback:\n%s", out)
	}
	restored := testbed.ValueAt(t, em, arn, "AWSCURRENT")
	if restored != prev {
		t.Fatal("AWSCURRENT is not the old AWSPREVIOUS value")
	}
	if err := login(t, parseDB(t, restored)); err != nil {
		t.Fatalf("the restored password does not log in: %v", err)
	}
	err := login(t, cur)
	if replacedStillLogsIn && err != nil {
		t.Errorf("the replaced value %s no longer logs in: %v", cur.Username, err)
	}
	if !replacedStillLogsIn && !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Errorf("the replaced password of %s: want a refused login, got %v", cur.Username, err)
	}
	for _, s := range []string{prev, cur.Password} {
		if strings.Contains(out, s) {
			t.Error("rollback printed a secret value")
		}
	}
}

func postgresFunction(t *testing.T) fn {
	return fn{bin: testbed.BuildFunction(t, "postgres"), env: []string{"DB_CA_BUNDLE=" + dbtest.Settings(t)["PG_CA_FILE"]}}
}

func TestRollbackPostgresSingleUser(t *testing.T) {
	user, pw := dbtest.PGUser(t, "rb", "")
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"ca_bundle": nil})))
	rollbackRestoresAPassword(t, postgresFunction(t), arn, pgLogin, false)
}

func TestRollbackPostgresAlternatingUsers(t *testing.T) {
	em := testbed.Emulator(t)
	master, mpw := dbtest.PGUser(t, "rbmaster", "CREATEROLE")
	user, pw := dbtest.PGUser(t, "rb", "")
	masterARN := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, map[string]any{"ca_bundle": nil})))
	arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"ca_bundle": nil, "masterarn": masterARN})))
	// user -> user_clone -> user; rolling back gives user_clone again, whose
	// password nothing changed, and user keeps working.
	rollbackRestoresAPassword(t, postgresFunction(t), arn, pgLogin, true)
	if got := parseDB(t, testbed.ValueAt(t, em, arn, "AWSCURRENT")).Username; got != user+dbsecret.CloneSuffix {
		t.Errorf("current user %s after the rollback, want the clone", got)
	}

	// Rolling back to a version naming the user in use is refused: see
	// internal/rollback (the emulators drop the versions it would need).
}

func TestRollbackMariaDBSingleUser(t *testing.T) {
	user, pw := dbtest.MyUser(t, "rb")
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"ca_bundle": nil})))
	f := fn{bin: testbed.BuildFunction(t, "mysql"), env: []string{"DB_CA_BUNDLE=" + dbtest.Settings(t)["MYSQL_CA_FILE"]}}
	rollbackRestoresAPassword(t, f, arn, myLogin, false)
}

// TestRollbackDataKey: the old key encrypts again, and data encrypted under
// the newer key before the rollback still decrypts after it.
func TestRollbackDataKey(t *testing.T) {
	cfg := testbed.AWSConfig(t)
	kc := kms.NewFromConfig(cfg)
	key, err := kc.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("rotationctl rollback test"), KeyUsage: kmstypes.KeyUsageTypeEncryptDecrypt})
	if err != nil {
		t.Fatal(err)
	}
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "{}")
	f := fn{bin: testbed.BuildFunction(t, "datakey"), env: []string{"KMS_KEY_ID=" + aws.ToString(key.KeyMetadata.Arn)}}
	f.rotate(t, arn)
	f.rotate(t, arn)
	kr := func() *keyring.Keyring {
		k, err := keyring.New(keyring.Options{SecretID: arn, Secrets: em.SM, KMS: kc})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := kr()
	newer, err := before.CurrentKID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ct, err := before.Encrypt(context.Background(), []byte("made with the newer key"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	older := versionWith(t, em, arn, "AWSPREVIOUS")

	out := f.rollback(t, arn)
	if !strings.Contains(out, "kind    datakey") || !strings.Contains(out, "rollback succeeded") {
		t.Fatalf("rollback:\n%s", out)
	}
	after := kr()
	if kid, err := after.CurrentKID(context.Background()); err != nil || kid != older {
		t.Fatalf("the key that encrypts after the rollback is %s (%v), want the older %s", kid, err, older)
	}
	pt, err := after.Decrypt(context.Background(), ct, []byte("aad"))
	if err != nil || string(pt) != "made with the newer key" {
		t.Fatalf("data encrypted under the newer key %s does not decrypt after the rollback: %v", newer, err)
	}
	doc, err := keyring.ParseDocument(testbed.ValueAt(t, em, arn, "AWSCURRENT"))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Previous) == 0 || doc.Previous[0].KID != newer || doc.Previous[0].Retired.IsZero() || !doc.Retired.IsZero() {
		t.Errorf("rolled-back document: primary %s retired %v, previous %v", doc.KID, doc.Retired, doc.Previous)
	}
	// A rotation after the rollback carries on from the restored key.
	f.rotate(t, arn)
	if _, err := kr().Decrypt(context.Background(), ct, []byte("aad")); err != nil {
		t.Errorf("after the next rotation: %v", err)
	}
}

// TestRollbackJWTKeys: the old key signs again, and tokens signed with the
// newer key before the rollback still verify after it.
func TestRollbackJWTKeys(t *testing.T) {
	em := testbed.Emulator(t)
	arn := testbed.CreateSecret(t, em, "{}")
	f := fn{bin: testbed.BuildFunction(t, "jwtkeys")}
	f.rotate(t, arn)
	f.rotate(t, arn)
	acc := func() *jwks.Accessor {
		a, err := jwks.New(jwks.Options{SecretID: arn, Secrets: em.SM})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	token, err := acc().Sign(context.Background(), []byte(`{"sub":"signed before the rollback"}`))
	if err != nil {
		t.Fatal(err)
	}
	older := versionWith(t, em, arn, "AWSPREVIOUS")
	out := f.rollback(t, arn)
	if !strings.Contains(out, "kind    jwtkeys") || !strings.Contains(out, "rollback succeeded") {
		t.Fatalf("rollback:\n%s", out)
	}
	a := acc()
	if _, err := a.Verify(context.Background(), token); err != nil {
		t.Fatalf("a token signed with the newer key does not verify after the rollback: %v", err)
	}
	fresh, err := a.Sign(context.Background(), []byte(`{"sub":"after"}`))
	if err != nil {
		t.Fatal(err)
	}
	var header struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(decodeSegment(t, strings.Split(fresh, ".")[0]), &header); err != nil {
		t.Fatal(err)
	}
	if header.KID != older {
		t.Errorf("signs with %s after the rollback, want the older key %s", header.KID, older)
	}
}
