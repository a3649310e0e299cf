package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

const clients, rotations = 4, 5

// measure runs clients that keep opening connections with AWSCURRENT
// (re-read every 5 ms, as a caching client does) while rotations run back
// to back through the engine, and returns what the clients saw and what
// the server's own ACL LOG counts for the users and the master user.
func measure(t *testing.T, h *dbtest.Harness, s *redistest.Server, arn, user string) (loadtest.Stats, int64) {
	t.Helper()
	users := []string{user, user + redis.CloneSuffix, s.AdminUser}
	before := refused(t, s, users...)
	run, err := loadtest.Start(context.Background(), loadtest.FromSecret(h.Em.SM, arn, "AWSCURRENT"), redistest.Login(s.Endpoint(t)), loadtest.Options{Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < rotations; i++ {
		if _, err := h.Rotate(arn); err != nil {
			run.Stop()
			t.Fatalf("rotation %d under load: %v", i+1, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	st := run.Stop()
	return st, refused(t, s, users...) - before
}

// TestZeroDowntimeSingleUser: a single user rotates with no refused login,
// neither on the client side nor in the server's ACL LOG: the new password
// is added beside the old one, and the old one goes only once clients read
// the new one (finishSecret removes those older than AWSPREVIOUS).
func TestZeroDowntimeSingleUser(t *testing.T) {
	s := redistest.Settings(t)
	h, _ := harness(t)
	arn, user, _ := single(t, h, s, "zd_")
	st, server := measure(t, h, s, arn, user)
	t.Logf("redis single user: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors; server's ACL LOG: %d refused",
		st.Clients, rotations, st.Duration.Round(time.Millisecond), st.Logins, st.Refused, st.OtherErrors, server)
	if st.Refused != 0 || st.OtherErrors != 0 || server != 0 || st.Logins < 50 {
		t.Fatalf("want zero refused logins out of at least 50, on both sides: %s, server %d (last error %v)", st, server, st.LastError)
	}
}

// onePassword plays a system whose accounts hold one password: the
// master user replaces the single user's password at setSecret.
type onePassword struct{ redis.Driver }

func (onePassword) Capabilities() account.Capabilities { return account.Capabilities{} }

// TestZeroDowntimeSingleUserControl: the same load and rotations with the
// password replaced at setSecret, as a single-user database rotation does,
// are refused logins on both sides, counted alike: the measure above can
// see a refusal.
func TestZeroDowntimeSingleUserControl(t *testing.T) {
	s := redistest.Settings(t)
	tgt := account.New(config(t), onePassword{}, secretsmanager.NewFromConfig(testbed.AWSConfig(t)))
	h := dbtest.NewHarness(t, tgt)
	arn, user, _ := single(t, h, s, "zdc_")
	st, server := measure(t, h, s, arn, user)
	t.Logf("redis single user, password replaced at setSecret (control): %d clients, %d rotations in %v: %d logins, %d refused, %d other errors; server's ACL LOG: %d refused",
		st.Clients, rotations, st.Duration.Round(time.Millisecond), st.Logins, st.Refused, st.OtherErrors, server)
	if st.Refused == 0 || server != st.Refused || st.OtherErrors != 0 {
		t.Fatalf("want refusals, counted alike by the clients and the server: %s, server %d", st, server)
	}
}

// TestZeroDowntimeAlternatingUsers: the same for alternating users.
func TestZeroDowntimeAlternatingUsers(t *testing.T) {
	s := redistest.Settings(t)
	h, _ := harness(t)
	arn, user, _ := alternating(t, h, s, "zd_")
	st, server := measure(t, h, s, arn, user)
	t.Logf("redis alternating users: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors; server's ACL LOG: %d refused",
		st.Clients, rotations, st.Duration.Round(time.Millisecond), st.Logins, st.Refused, st.OtherErrors, server)
	if st.Refused != 0 || st.OtherErrors != 0 || server != 0 || st.Logins < 50 {
		t.Fatalf("want zero refused logins out of at least 50, on both sides: %s, server %d (last error %v)", st, server, st.LastError)
	}
}
