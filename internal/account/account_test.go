package account_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/postgres"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The layer's paths that no database takes on its own are run here against
// the real PostgreSQL, through its driver with one capability hidden:
// masterOnly plays a system whose users cannot change their own passwords
// (RabbitMQ's, say), so that a single user is rotated by the master user.
// It counts the logins the layer makes.
type masterOnly struct {
	account.Driver
	mu     sync.Mutex
	logins int
}

func (*masterOnly) Capabilities() account.Capabilities { return account.Capabilities{} }

// Parse keeps the user of a secret that names a master secret: single user.
func (d *masterOnly) Parse(req account.ParseRequest) (account.Account, error) {
	a, err := d.Driver.Parse(req)
	a.Strategy = account.SingleUser
	return a, err
}

func (d *masterOnly) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	d.mu.Lock()
	d.logins++
	d.mu.Unlock()
	return d.Driver.Connect(ctx, req)
}

func (d *masterOnly) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logins
}

func newMasterOnly(t testing.TB, cfg aws.Config) (*account.Target, *masterOnly) {
	sm := secretsmanager.NewFromConfig(cfg)
	drv := &masterOnly{Driver: dbtarget.NewDriver(postgres.Driver{}, sm, rds.NewFromConfig(cfg))}
	return account.New(dbtest.TargetConfig(t), drv, sm), drv
}

func login(t testing.TB, s *dbsecret.Secret) error {
	t.Helper()
	st := dbtest.Settings(t)
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(st["PG_PORT"])
	c, err := postgres.Driver{}.Connect(context.Background(), dbsecret.Endpoint{Host: st["PG_HOST"], Port: port, DBName: "postgres", TLS: tlsCfg, Timeout: 5e9}, s.Username, s.Password)
	if err == nil {
		c.Close()
	}
	return err
}

// secret makes a user and a master user (CREATEROLE) and the secret of the
// user that names the master's.
func secret(t *testing.T, h *dbtest.Harness) (arn, user, pw string) {
	master, mpw := dbtest.PGUser(t, "master", "CREATEROLE")
	user, pw = dbtest.PGUser(t, "app", "")
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, nil)))
	return testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"masterarn": masterARN}))), user, pw
}

// TestMasterSetsSingleUser: the master user sets the single user's password
// after AWSCURRENT proved the secret controls it: three logins per rotation
// (proof, master, test), none refused in the server's log, no clone.
func TestMasterSetsSingleUser(t *testing.T) {
	tgt, drv := newMasterOnly(t, testbed.AWSConfig(t))
	h := dbtest.NewHarness(t, tgt)
	arn, user, pw := secret(t, h)
	log := dbtest.PGLog(t)
	old := h.Current(arn)
	want := map[string]int{rotation.StepCreate: 0, rotation.StepSet: 2, rotation.StepTest: 1, rotation.StepFinish: 0}
	seen := []string{pw}
	for r := 1; r <= 2; r++ {
		token := h.Open(arn)
		for _, step := range localrun.Steps {
			before := drv.count()
			if err := h.Step(nil, step, arn, token); err != nil {
				t.Fatalf("rotation %d, %s: %v", r, step, err)
			}
			if n := drv.count() - before; n != want[step] {
				t.Errorf("rotation %d, %s: %d logins, want %d", r, step, n, want[step])
			}
		}
		if err := h.Em.CloseRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		cur := h.Current(arn)
		if cur.Username != user || cur.Password == old.Password {
			t.Fatalf("rotation %d: AWSCURRENT names %s, password changed %v", r, cur.Username, cur.Password != old.Password)
		}
		seen = append(seen, cur.Password)
		old = cur
	}
	if n := log.Refused(t, user, user+dbsecret.CloneSuffix); n != 0 {
		t.Fatalf("the server logged %d refused logins", n)
	}
	if err := login(t, old); err != nil {
		t.Fatalf("AWSCURRENT does not log in: %v", err)
	}
	for _, p := range seen[:len(seen)-1] {
		if err := login(t, &dbsecret.Secret{Username: user, Password: p}); !errors.Is(err, dbsecret.ErrCannotLogIn) {
			t.Fatalf("an old password still logs in: %v", err)
		}
	}
	var clones int
	if err := dbtest.PGAdmin(t).QueryRow(context.Background(), "SELECT count(*) FROM pg_roles WHERE rolname = $1", user+dbsecret.CloneSuffix).Scan(&clones); err != nil || clones != 0 {
		t.Fatalf("a clone was made (%d, %v)", clones, err)
	}
	h.AssertNoSecretInLogs(seen...)
}

// TestMasterSetsSingleUserOnlyAfterProof: a secret naming another user,
// whose password it does not have, makes the master change nothing.
func TestMasterSetsSingleUserOnlyAfterProof(t *testing.T) {
	tgt, _ := newMasterOnly(t, testbed.AWSConfig(t))
	h := dbtest.NewHarness(t, tgt)
	master, mpw := dbtest.PGUser(t, "master", "CREATEROLE")
	victim, vpw := dbtest.PGUser(t, "victim", "")
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, victim, "guessed-password", map[string]any{"masterarn": masterARN})))
	_, err := h.Rotate(arn)
	if err == nil || !strings.Contains(err.Error(), "cannot log in as "+victim+" with AWSCURRENT") || !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("want a refusal for want of proof, got %v", err)
	}
	if err := login(t, &dbsecret.Secret{Username: victim, Password: vpw}); err != nil {
		t.Fatalf("the victim's password changed: %v", err)
	}
	h.AssertNoSecretInLogs(mpw, vpw)
}

// TestOwnPasswordNeedsAMaster: a single-user secret without a master secret,
// for a system whose users cannot change their own passwords, is refused in
// createSecret.
func TestOwnPasswordNeedsAMaster(t *testing.T) {
	tgt, _ := newMasterOnly(t, testbed.AWSConfig(t))
	h := dbtest.NewHarness(t, tgt)
	user, pw := dbtest.PGUser(t, "app", "")
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, nil)))
	token := h.Open(arn)
	err := h.Step(nil, "createSecret", arn, token)
	if err == nil || !strings.Contains(err.Error(), `cannot change its own password: the secret needs a master secret (field "masterarn")`) {
		t.Fatalf("want a refusal, got %v", err)
	}
}

// crashSpec runs the shared crash tests on the master-sets-single-user path.
func crashSpec(t *testing.T) dbtest.CrashSpec {
	return dbtest.CrashSpec{
		NewTarget: func(cfg aws.Config) rotation.Target { tgt, _ := newMasterOnly(t, cfg); return tgt },
		NewSecret: func(t *testing.T, em *localrun.Emulator) string {
			master, mpw := dbtest.PGUser(t, "master", "CREATEROLE")
			user, pw := dbtest.PGUser(t, "crash", "")
			masterARN := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, master, mpw, nil)))
			return testbed.CreateSecret(t, em, dbtest.SecretJSON(t, dbtest.PGSecret(t, user, pw, map[string]any{"masterarn": masterARN})))
		},
		Login: login,
		SetPassword: func(t testing.TB, user, password string) {
			dbtest.PGExec(t, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" PASSWORD '"+password+"'")
		},
		MasterSetsSingleUser: true,
	}
}

func TestMasterSetsSingleUserCrashes(t *testing.T)          { dbtest.Crashes(t, crashSpec(t)) }
func TestMasterSetsSingleUserCrashAtEveryCall(t *testing.T) { dbtest.CrashAtEveryCall(t, crashSpec(t)) }
func TestMasterSetsSingleUserAbandonedAfterSetSecret(t *testing.T) {
	dbtest.AbandonedAfterSetSecret(t, crashSpec(t))
}
func TestMasterSetsSingleUserOtherVersionsChecked(t *testing.T) {
	dbtest.OtherVersionsChecked(t, crashSpec(t))
}
