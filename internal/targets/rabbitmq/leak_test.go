package rabbitmq_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq/rabbitmqtest"
)

// TestNoPasswordInTheBrokerLog runs every operation, a refused login among
// them, and reads what the broker logged meanwhile (at debug level): no
// password and no stored password hash may appear. A control connection
// whose client-provided name is a password-like value must appear, so the
// scan is shown to read the lines these operations wrote.
func TestNoPasswordInTheBrokerLog(t *testing.T) {
	s := rabbitmqtest.Settings(t)
	ctx := context.Background()
	orig := rabbitmqtest.Name("leak_")
	clone := orig + "_clone"
	p0, p1, p2, wrong := rabbitmqtest.Password(), rabbitmqtest.Password(), rabbitmqtest.Password(), rabbitmqtest.Password()
	s.CreateUser(t, orig, p0)
	t.Cleanup(func() { s.DeleteUser(t, clone) })
	log := s.LogFrom(t)

	admin := s.Admin(t)
	ep := s.Endpoint(t)
	steps := []struct {
		name string
		run  func() error
	}{
		{"SetPassword", func() error { return admin.SetPassword(ctx, orig, p1) }},
		{"HasPassword", func() error { _, err := admin.HasPassword(ctx, orig, p1); return err }},
		{"Probe", func() error { return rabbitmq.Probe(ctx, ep, orig, p1) }},
		{"EnsureClone", func() error { return admin.EnsureClone(ctx, orig, clone, p2) }},
		{"Probe clone", func() error { return rabbitmq.Probe(ctx, ep, clone, p2) }},
		{"DeleteUser", func() error { return admin.DeleteUser(ctx, clone) }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if err := rabbitmq.Probe(ctx, ep, orig, wrong); err == nil {
		t.Fatal("a wrong password logged in")
	}
	var stored struct {
		Hash string `json:"password_hash"`
	}
	if err := json.Unmarshal(s.API(t, http.MethodGet, []string{"api", "users", orig}, nil), &stored); err != nil || stored.Hash == "" {
		t.Fatalf("read the stored hash: %v", err)
	}

	// Control, written last: the broker logs a connection's client-provided name.
	control := rabbitmqtest.Password()
	s.Mark(t, control)
	lines := log.Lines(t, control)
	if !strings.Contains(strings.Join(lines, "\n"), control) {
		t.Fatalf("the control is not in the %d log lines written meanwhile: the scan cannot be trusted", len(lines))
	}
	if n := rabbitmqtest.RefusedLogins(lines); n != 1 {
		t.Errorf("the log shows %d refused logins, want the 1 this test made", n)
	}
	for _, secret := range []string{p0, p1, p2, wrong, s.AdminPassword, stored.Hash} {
		for _, l := range lines {
			if strings.Contains(l, secret) {
				t.Errorf("a broker log line shows a password or hash (line starting %.35q)", l)
			}
		}
	}
}
