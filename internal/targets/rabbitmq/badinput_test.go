package rabbitmq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestBadInputChangesNothing: the bad input of issue 11 against the real
// broker. Each rotation fails with an error that names the secret, the
// account and the reason, shows no password, and leaves every version and
// every broker user as it was: the user's working password unchanged, no
// clone made.
func TestBadInputChangesNothing(t *testing.T) {
	b := newBed(t)
	free := testbed.FreeLoopbackPort(t)
	for _, c := range []struct {
		name   string
		single bool
		// extra are the user secret's fields to change, adjust the
		// configuration's, masterTags the master user's tags
		// (administrator when nil).
		extra      map[string]any
		adjust     func(*rabbitmq.Config)
		masterTags []string
		// user: the secret names a user that does not exist.
		unknownUser bool
		// masterPort: the master secret's management_port.
		masterPort int
		// masterFails: the master user's login fails, and the error
		// names that account rather than the rotated user.
		masterFails bool
		want        []string
	}{{
		name: "unknown user", unknownUser: true,
		want: []string{"AWSCURRENT does not log in as", `(field "password")`, "cannot log in"},
	}, {
		name: "unknown user, single user", unknownUser: true, single: true,
		want: []string{"cannot log in as", "with AWSCURRENT or AWSPREVIOUS"},
	}, {
		name:  "AMQP port unreachable",
		extra: map[string]any{"port": free},
		want:  []string{fmt.Sprintf("cannot reach 127.0.0.1:%d", free)},
	}, {
		name:  "management API unreachable",
		extra: map[string]any{"management_port": free}, masterPort: free, masterFails: true,
		want: []string{"log in as master user", fmt.Sprintf("cannot reach 127.0.0.1:%d", free)},
	}, {
		name:   "certificate that does not verify",
		adjust: func(c *rabbitmq.Config) { c.CABundle = "" },
		want:   []string{"cannot reach", "certificate"},
	}, {
		name:       "master user without the administrator tag",
		masterTags: []string{"management", "policymaker"}, masterFails: true,
		want: []string{"log in as master user", `is not tagged "administrator": it cannot change users`},
	}, {
		name:  "vhost the user has no access to",
		extra: map[string]any{"vhost": rabbitmqtest.Name("novhost_")},
		want:  []string{"AWSCURRENT does not log in as", "NOT_ALLOWED"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			h := dbtest.NewHarness(t, b.target(t, c.adjust))
			master, mpw := rabbitmqtest.Name("master_"), rabbitmqtest.Password()
			tags := c.masterTags
			if tags == nil {
				tags = []string{"administrator"}
			}
			b.CreateUser(t, master, mpw, tags...)
			mport := b.APIPort
			if c.masterPort != 0 {
				mport = c.masterPort
			}
			masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, map[string]any{
				"username": master, "password": mpw, "host": b.Host, "management_port": mport,
			}))
			user, pw := b.user(t, "bad_")
			if c.unknownUser {
				user = rabbitmqtest.Name("nobody_")
			}
			extra := map[string]any{"masterarn": masterARN}
			if c.single {
				extra["strategy"] = "single-user"
			}
			for k, v := range c.extra {
				extra[k] = v
			}
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret(user, pw, extra)))
			users := []string{user, user + rabbitmq.CloneSuffix, master}
			hashes := b.storedHashes(t, users...)
			before := dbtest.Snapshot(t, h, arn)
			token, err := rotateOnce(t, h, arn)
			if err == nil {
				t.Fatal("the rotation was not refused")
			}
			t.Logf("refused: %v", err)
			account := user
			if c.masterFails {
				account = master
			}
			for _, w := range append([]string{arn, account}, c.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), mpw) {
				t.Fatal("the error shows a password")
			}
			dbtest.Unchanged(t, h, arn, token, before)
			if got := b.storedHashes(t, users...); fmt.Sprint(got) != fmt.Sprint(hashes) {
				t.Fatalf("broker users changed: %d before, %d after, or a password changed", len(hashes), len(got))
			}
			if !c.unknownUser {
				if ok, err := b.admin.HasPassword(context.Background(), user, pw); err != nil || !ok {
					t.Fatalf("the user's working password changed (%v, %v)", ok, err)
				}
			}
			h.AssertNoSecretInLogs(pw, mpw)
		})
	}
}

// TestBadSecretFields: a secret the function cannot use is refused in
// createSecret, before anything is stored or any server is reached, naming
// the field and never a value.
func TestBadSecretFields(t *testing.T) {
	b := newBed(t)
	h := dbtest.NewHarness(t, b.target(t, nil))
	masterARN, _, _ := b.master(t, h.Em)
	for _, c := range []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"no master secret", map[string]any{"masterarn": nil}, `a rabbitmq user cannot change its own password: the secret needs a master secret (field "masterarn")`},
		{"no host", map[string]any{"host": nil}, `secret field "host" is missing`},
		{"host with a scheme", map[string]any{"host": "https://mq.example.com"}, `secret field "host" must be a host name or IP address`},
		{"host with a port", map[string]any{"host": "mq.example.com:443"}, `secret field "host" must be a host name or IP address`},
		{"port out of range", map[string]any{"port": 70000}, `secret field "port" must be a number between 1 and 65535`},
		{"management port not a number", map[string]any{"management_port": "https"}, `secret field "management_port" must be a number`},
		{"empty vhost", map[string]any{"vhost": ""}, `secret field "vhost" must be a non-empty string`},
		{"unknown strategy", map[string]any{"strategy": "rotate-harder"}, `secret field "strategy" must be "alternating-users" or "single-user"`},
		{"plaintext", map[string]any{"ssl": false}, `secret field "ssl" is false: the rabbitmq function connects only over verified TLS`},
		{"another engine", map[string]any{"engine": "postgres"}, `secret field "engine" names another engine`},
		{"an RDS identifier", map[string]any{"dbInstanceIdentifier": "db-1"}, `secret field "dbInstanceIdentifier" names an RDS database`},
		{"empty password", map[string]any{"password": ""}, `secret field "password" is empty`},
		{"only the clone suffix", map[string]any{"username": rabbitmq.CloneSuffix}, `only the clone suffix`},
	} {
		t.Run(c.name, func(t *testing.T) {
			extra := map[string]any{"masterarn": masterARN}
			for k, v := range c.extra {
				extra[k] = v
			}
			const pw = "s3cret-password-value"
			arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, b.secret("app", pw, extra)))
			before := dbtest.Snapshot(t, h, arn)
			token, err := rotateOnce(t, h, arn)
			if err == nil || !strings.HasPrefix(err.Error(), "createSecret ") || !strings.Contains(err.Error(), arn) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want a createSecret refusal naming the secret and saying %q, got %v", c.want, err)
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatal("the error shows the password")
			}
			dbtest.Unchanged(t, h, arn, token, before)
		})
	}
}

// TestParseSecret: defaults, and the master secret's forms.
func TestParseSecret(t *testing.T) {
	s, err := rabbitmq.ParseSecret(`{"host":"b-1.mq.eu-west-1.amazonaws.com","username":"app","password":"p","masterarn":"arn:m"}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 5671 || s.ManagementPort != 15671 || s.VHost != "/" || s.Strategy != account.AlternatingUsers {
		t.Fatalf("defaults: %+v", s)
	}
	if got, want := s.Server(), "b-1.mq.eu-west-1.amazonaws.com:5671 management_port=15671 vhost=/"; got != want {
		t.Fatalf("Server() = %q, want %q", got, want)
	}
	s, err = rabbitmq.ParseSecret(`{"host":"MQ.example.com","port":"5672","management_port":443,"vhost":"orders","username":"app","password":"p","masterarn":"arn:m","strategy":"single-user"}`, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 5672 || s.ManagementPort != 443 || s.VHost != "orders" || s.Strategy != account.SingleUser || s.Server() != "mq.example.com:5672 management_port=443 vhost=orders" {
		t.Fatalf("parsed %+v, server %s", s, s.Server())
	}
	// A master secret may hold credentials only, and its strategy is moot.
	m, err := rabbitmq.ParseSecret(`{"username":"admin","password":"p","masterarn":"arn:other","strategy":"bogus"}`, true)
	if err != nil || m.Server() != "" || m.Strategy != account.SingleUser {
		t.Fatalf("master secret of credentials only: %+v, %v", m, err)
	}
	// Its own "masterarn" is ignored by the driver.
	a, err := rabbitmq.Driver{}.Parse(account.ParseRequest{Value: `{"username":"admin","password":"p","masterarn":"arn:other"}`, Master: true})
	if err != nil || a.MasterARN != "" {
		t.Fatalf("master account %+v, %v", a, err)
	}
	if _, err := rabbitmq.ParseSecret(`{"username":"u","password":"s3cret","host":"h","port":0}`, false); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("port 0: %v", err)
	}
}
