package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestLoadSeesTwoPasswordsAsZeroDowntime is the groundwork of the
// zero-downtime measure: clients log in with the secret's AWSCURRENT
// while the password is changed the way the multi-password rotation will
// (add the new one, store it, remove the old one), and see no refusal; nor
// does the server's ACL LOG. The same load then sees the refusals of a
// reset under its feet, counted alike by the clients and by the server, so
// both counters are shown to count.
func TestLoadSeesTwoPasswordsAsZeroDowntime(t *testing.T) {
	s := redistest.Settings(t)
	em := testbed.Emulator(t)
	admin := s.Admin(t)
	ctx := context.Background()
	user, p1, p2, p3 := redistest.Name("load_"), redistest.Password(), redistest.Password(), redistest.Password()
	s.CreateUser(t, user, p1, "on", "~*", "+@all")
	arn := testbed.CreateSecret(t, em, loadtest.Credentials{User: user, Password: p1}.JSON())
	pause := func() { time.Sleep(300 * time.Millisecond) } // clients keep logging in meanwhile

	run, err := loadtest.Start(ctx, loadtest.FromSecret(em.SM, arn, "AWSCURRENT"), redistest.Login(s.Endpoint(t)), loadtest.Options{Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	pause()
	if err := admin.AddPassword(ctx, user, p2); err != nil {
		t.Fatal(err)
	}
	pause()
	if err := loadtest.StoreCurrent(ctx, em.SM, arn, loadtest.Credentials{User: user, Password: p2}); err != nil {
		t.Fatal(err)
	}
	pause()
	if _, err := admin.RemovePasswordsExcept(ctx, user, p2); err != nil {
		t.Fatal(err)
	}
	pause()
	st := run.Stop()
	t.Logf("Redis, new password added beside the old one: %s; server: %d refused", st, s.AuthFailures(t, user))
	if st.Logins < 20 || st.OtherErrors > 0 {
		t.Fatalf("the load did not run as it should: %s (last error %v)", st, st.LastError)
	}
	if st.Refused != 0 {
		t.Errorf("clients saw %d refused logins, want 0 (last: %v)", st.Refused, st.LastError)
	}
	if n := s.AuthFailures(t, user); n != 0 {
		t.Errorf("the server's ACL LOG counts %d refused logins of %s, want 0", n, user)
	}

	// Control: the password reset under the clients, the secret unchanged.
	run, err = loadtest.Start(ctx, loadtest.FromSecret(em.SM, arn, "AWSCURRENT"), redistest.Login(s.Endpoint(t)), loadtest.Options{Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	pause()
	if err := admin.SetPassword(ctx, user, p3); err != nil {
		t.Fatal(err)
	}
	pause()
	st = run.Stop()
	server := s.AuthFailures(t, user)
	t.Logf("Redis, password reset under the clients: %s; server: %d refused", st, server)
	if st.Refused == 0 {
		t.Fatalf("clients saw no refusal although the password they hold was removed: %s", st)
	}
	if server != st.Refused {
		t.Errorf("the server counts %d refused logins, the clients %d: one of the counters is wrong", server, st.Refused)
	}
}
