package rabbitmq_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// bed is the broker of scripts/rabbitmq.sh and the AWS emulator, as the
// rotation tests use them.
type bed struct {
	*rabbitmqtest.Server
	admin *rabbitmq.Admin
}

func newBed(t testing.TB) *bed {
	s := rabbitmqtest.Settings(t)
	return &bed{Server: s, admin: s.Admin(t)}
}

// config is the function's configuration in the tests: an empty
// environment, except that the test CA is RABBITMQ_CA_BUNDLE (the tests'
// secrets name no ca_bundle, as a deployment's should not).
func (b *bed) config(adjust func(*rabbitmq.Config)) rabbitmq.Config {
	cfg := rabbitmq.DefaultConfig()
	cfg.CABundle = b.CAFile
	if adjust != nil {
		adjust(&cfg)
	}
	return cfg
}

// target is the function's target over the emulator's Secrets Manager.
func (b *bed) target(t testing.TB, adjust func(*rabbitmq.Config)) *account.Target {
	return rabbitmq.New(b.config(adjust), rabbitmq.Driver{}, secretsmanager.NewFromConfig(testbed.AWSConfig(t)))
}

// master makes an administrator and its master secret, which names the
// broker's host and management API port; it returns the secret's ARN.
func (b *bed) master(t testing.TB, em *localrun.Emulator) (arn, user, password string) {
	t.Helper()
	user, password = rabbitmqtest.Name("master_"), rabbitmqtest.Password()
	b.CreateUser(t, user, password, "administrator")
	arn = testbed.CreateSecret(t, em, dbtest.SecretJSON(t, map[string]any{
		"username": user, "password": password, "host": b.Host, "management_port": b.APIPort,
	}))
	return arn, user, password
}

// secret is a user's secret at the broker, with extra fields (a nil value
// deletes the field).
func (b *bed) secret(user, password string, extra map[string]any) map[string]any {
	m := map[string]any{
		"engine": "rabbitmq", "host": b.Host, "port": b.AMQPSPort, "management_port": b.APIPort, "vhost": "/",
		"username": user, "password": password,
	}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// user makes an application user (full permissions on "/", the given
// tags) and deletes it and its clone when the test ends.
func (b *bed) user(t testing.TB, prefix string, tags ...string) (name, password string) {
	t.Helper()
	name, password = rabbitmqtest.Name(prefix), rabbitmqtest.Password()
	b.CreateUser(t, name, password, tags...)
	t.Cleanup(func() { b.DeleteUser(t, name+rabbitmq.CloneSuffix) })
	return name, password
}

// rotated makes a user, a master and the user's secret: alternating users
// unless single, where the secret asks for "single-user".
func (b *bed) rotated(t testing.TB, em *localrun.Emulator, prefix string, single bool) (arn, user, password string) {
	t.Helper()
	masterARN, _, _ := b.master(t, em)
	user, password = b.user(t, prefix)
	extra := map[string]any{"masterarn": masterARN}
	if single {
		extra["strategy"] = "single-user"
	}
	return testbed.CreateSecret(t, em, dbtest.SecretJSON(t, b.secret(user, password, extra))), user, password
}

// logsIn reports whether user logs in with password over AMQP. A password
// that the broker's stored hash already refuses is not tried: a refused
// AMQP login costs the broker's 3 s delay and a refusal in its log, which
// the rotation tests count.
func (b *bed) logsIn(t testing.TB, user, password string) error {
	t.Helper()
	ok, err := b.admin.HasPassword(context.Background(), user, password)
	if errors.Is(err, rabbitmq.ErrNoUser) || err == nil && !ok {
		return &account.ConnError{Kind: account.ErrCannotLogIn, User: user, Endpoint: "stored hash", Err: errors.New("not the user's password")}
	}
	if err != nil {
		t.Fatalf("read user %s: %v", user, err)
	}
	return rabbitmq.Probe(context.Background(), b.Endpoint(t), user, password)
}

// login is logsIn in the shape of the shared crash tests.
func (b *bed) login(t testing.TB, s *dbsecret.Secret) error {
	return b.logsIn(t, s.Username, s.Password)
}

// setPassword sets a user's password as the administrator.
func (b *bed) setPassword(t testing.TB, user, password string) {
	t.Helper()
	if err := b.admin.SetPassword(context.Background(), user, password); err != nil {
		t.Fatal(err)
	}
}

// storedHashes returns the stored password hash of each user that exists
// among names: what changes when a password does.
func (b *bed) storedHashes(t testing.TB, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		if _, err := b.admin.User(context.Background(), n); errors.Is(err, rabbitmq.ErrNoUser) {
			continue
		}
		var u struct {
			Hash string `json:"password_hash"`
		}
		if err := json.Unmarshal(b.API(t, http.MethodGet, []string{"api", "users", n}, nil), &u); err != nil {
			t.Fatal(err)
		}
		out[n] = u.Hash
	}
	return out
}

// refusedFor counts the broker log's refused logins of the users named.
func refusedFor(lines []string, users ...string) int {
	n := 0
	for _, l := range lines {
		if rabbitmqtest.RefusedLogins([]string{l}) == 0 {
			continue
		}
		if slices.ContainsFunc(users, func(u string) bool { return strings.Contains(l, "'"+u+"'") }) {
			n++
		}
	}
	return n
}

// countingDriver counts the logins the layer makes through the driver,
// and the refused ones, as the driver sees them.
type countingDriver struct {
	account.Driver
	mu              sync.Mutex
	logins, refused int
	master          int
}

func (d *countingDriver) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	s, err := d.Driver.Connect(ctx, req)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logins++
	if req.Master {
		d.master++
	}
	if errors.Is(err, account.ErrCannotLogIn) {
		d.refused++
	}
	return s, err
}

func (d *countingDriver) counts() (logins, refused int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logins, d.refused
}

// awsConfig is the emulator's configuration.
func awsConfig(t testing.TB) aws.Config { return testbed.AWSConfig(t) }

var _ rotation.Target = (*account.Target)(nil)
