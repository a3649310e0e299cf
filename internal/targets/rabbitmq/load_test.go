package rabbitmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestLoadSeesAlternatingUsersAsZeroDowntime is the groundwork of the
// zero-downtime measure: AMQP clients log in with the secret's AWSCURRENT
// while the credentials move the way the alternating-users rotation will
// (the idle clone gets a new password, the secret moves to it, then the
// idle original gets one), and see no refusal; nor does the broker count
// one. The same load then sees the refusals of the active user's password
// changed under its feet, counted alike by the clients, the broker's
// counter and its log, so all three are shown to count.
func TestLoadSeesAlternatingUsersAsZeroDowntime(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	em := testbed.Emulator(t)
	admin := s.Admin(t)
	ctx := context.Background()
	user := rabbitmqtest.Name("load_")
	clone := user + "_clone"
	p1, p2, p3, p4 := rabbitmqtest.Password(), rabbitmqtest.Password(), rabbitmqtest.Password(), rabbitmqtest.Password()
	s.CreateUser(t, user, p1)
	t.Cleanup(func() { s.DeleteUser(t, clone) })
	arn := testbed.CreateSecret(t, em, loadtest.Credentials{User: user, Password: p1}.JSON())
	pause := func() { time.Sleep(500 * time.Millisecond) } // clients keep logging in meanwhile
	read := loadtest.FromSecret(em.SM, arn, "AWSCURRENT")

	failedBefore, log := s.FailedLogins(t), s.LogFrom(t)
	run, err := loadtest.Start(ctx, read, rabbitmqtest.Login(s.Endpoint(t)), loadtest.Options{Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	pause()
	if err := admin.EnsureClone(ctx, user, clone, p2); err != nil {
		t.Fatal(err)
	}
	pause()
	if err := loadtest.StoreCurrent(ctx, em.SM, arn, loadtest.Credentials{User: clone, Password: p2}); err != nil {
		t.Fatal(err)
	}
	pause()
	if err := admin.SetPassword(ctx, user, p3); err != nil { // the next rotation's idle user
		t.Fatal(err)
	}
	pause()
	st := run.Stop()
	failed := s.FailedLogins(t) - failedBefore
	logged := rabbitmqtest.RefusedLogins(log.Until(t, s))
	t.Logf("RabbitMQ, alternating users: %s; broker: %d failed authentications, %d refusals logged", st, failed, logged)
	if st.Logins < 20 || st.OtherErrors > 0 {
		t.Fatalf("the load did not run as it should: %s (last error %v)", st, st.LastError)
	}
	if st.Refused != 0 || failed != 0 || logged != 0 {
		t.Errorf("refused logins: clients %d, broker counter %d, broker log %d; want 0 (last: %v)", st.Refused, failed, logged, st.LastError)
	}

	// Control: the active user's password changed under the clients, the
	// secret unchanged.
	failedBefore, log = s.FailedLogins(t), s.LogFrom(t)
	run, err = loadtest.Start(ctx, read, rabbitmqtest.Login(s.Endpoint(t)), loadtest.Options{Clients: 4})
	if err != nil {
		t.Fatal(err)
	}
	pause()
	if err := admin.SetPassword(ctx, clone, p4); err != nil {
		t.Fatal(err)
	}
	pause()
	st = run.Stop()
	failed = s.FailedLogins(t) - failedBefore
	logged = rabbitmqtest.RefusedLogins(log.Until(t, s))
	t.Logf("RabbitMQ, active user's password changed under the clients: %s; broker: %d failed authentications, %d refusals logged", st, failed, logged)
	if st.Refused == 0 {
		t.Fatalf("clients saw no refusal although their password was changed: %s", st)
	}
	if failed != st.Refused || int64(logged) != st.Refused {
		t.Errorf("refused logins: clients %d, broker counter %d, broker log %d: the counts must agree", st.Refused, failed, logged)
	}
}
