package redis_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// leaks returns the lines of log that contain one of the passwords.
func leaks(log []string, passwords ...string) []string {
	var found []string
	for _, line := range log {
		for _, pw := range passwords {
			if strings.Contains(line, pw) {
				found = append(found, line)
			}
		}
	}
	return found
}

// TestNoPasswordReachesTheServer runs every operation through a relay that
// records what the client sends, under MONITOR, then reads SLOWLOG (the bed
// logs every command), ACL LOG and the server's log file.
//
// No command but AUTH (a client's own login) may carry a password, and the
// recorded ACL SETUSER commands must carry the hashes instead. Redis 7.0
// hides ACL SETUSER from MONITOR and redacts its arguments in SLOWLOG by
// itself (Redis 6 showed them), so the server's logs alone would pass even
// a plaintext ">password" rule: the relay is what proves the hashing. The
// server's logs are scanned all the same. Controls show that each scan
// finds a password that does reach it.
func TestNoPasswordReachesTheServer(t *testing.T) {
	s := redistest.Settings(t)
	ctx := context.Background()
	orig := redistest.Name("leak_")
	clone := orig + "_clone"
	p0, p1, p2, p3, wrong := redistest.Password(), redistest.Password(), redistest.Password(), redistest.Password(), redistest.Password()
	s.CreateUser(t, orig, p0, "on", "~*", "+@all")
	t.Cleanup(func() { s.DeleteUser(t, clone) })

	relay := s.Relay(t)
	ep := relay.Endpoint()
	mon := s.Monitor(t)
	admin, err := redis.Connect(ctx, ep, s.AdminUser, s.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	steps := []struct {
		name string
		run  func() error
	}{
		{"AddPassword", func() error { return admin.AddPassword(ctx, orig, p1) }},
		{"HasPassword", func() error { _, err := admin.HasPassword(ctx, orig, p1); return err }},
		{"Probe new", func() error { return redis.Probe(ctx, ep, orig, p1) }},
		{"RemovePasswordsExcept", func() error { _, err := admin.RemovePasswordsExcept(ctx, orig, p1); return err }},
		{"SetPassword", func() error { return admin.SetPassword(ctx, orig, p2) }},
		{"EnsureClone", func() error { return admin.EnsureClone(ctx, orig, clone, p3) }},
		{"Probe clone", func() error { return redis.Probe(ctx, ep, clone, p3) }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
	if err := redis.Probe(ctx, ep, orig, wrong); err == nil {
		t.Fatal("a wrong password logged in")
	}
	passwords := []string{p0, p1, p2, p3, wrong, s.AdminPassword}

	// Controls: a password sent the way this package never does, over the
	// relay (ACL SETUSER ... >password) and where MONITOR and SLOWLOG show
	// arguments (ECHO).
	control, controlPW, echoPW := redistest.Name("ctl_"), redistest.Password(), redistest.Password()
	t.Cleanup(func() { s.DeleteUser(t, control) })
	if err := s.ClientAt(t, ep).Do(ctx, "ACL", "SETUSER", control, ">"+controlPW).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Client(t).Echo(ctx, echoPW).Err(); err != nil {
		t.Fatal(err)
	}

	cmds, err := relay.Commands()
	if err != nil {
		t.Fatalf("parse what the client sent: %v", err)
	}
	var sent []string // what the client sent, logins (AUTH, HELLO ... AUTH) excepted
	for _, c := range cmds {
		if strings.EqualFold(c[0], "AUTH") || strings.EqualFold(c[0], "HELLO") {
			continue // a login carries the user's own password, as every client's does
		}
		sent = append(sent, strings.Join(c, " "))
	}
	if len(leaks(sent, controlPW)) == 0 {
		t.Fatalf("the scan of the %d commands sent missed the control password: it cannot be trusted", len(sent))
	}
	for _, pw := range []string{p1, p2, p3} {
		if len(leaks(sent, "#"+redis.PasswordHash(pw))) == 0 {
			t.Errorf("no command sent carries the hash of a password this test set (%d commands)", len(sent))
		}
	}
	if found := leaks(sent, passwords...); len(found) > 0 {
		t.Errorf("a command other than a login carried a password in plaintext: %d commands, e.g. one starting %q", len(found), strings.Fields(found[0])[0])
	}

	monitored := mon.Stop()
	if len(leaks(monitored, echoPW)) == 0 {
		t.Fatalf("the scan missed the control in MONITOR (%d lines): it cannot be trusted", len(monitored))
	}
	if found := leaks(monitored, passwords...); len(found) > 0 {
		t.Errorf("MONITOR shows a password in %d lines", len(found))
	}
	slow := s.SlowLog(t)
	if len(leaks(slow, echoPW)) == 0 {
		t.Errorf("the control is not in SLOWLOG (%d entries): is slowlog-log-slower-than 0?", len(slow))
	}
	if found := leaks(slow, passwords...); len(found) > 0 {
		t.Errorf("SLOWLOG shows a password in %d entries", len(found))
	}
	var acl []string
	for _, e := range s.ACLLog(t) {
		acl = append(acl, e.Fields)
	}
	if s.AuthFailures(t, orig) == 0 {
		t.Error("ACL LOG has no entry for the refused login: nothing was scanned")
	}
	if found := leaks(acl, passwords...); len(found) > 0 {
		t.Errorf("ACL LOG shows a password in %d entries", len(found))
	}
	logFile := testbed.EnvFile(t, "redis.env", "scripts/redis.sh")["REDIS_LOG_FILE"]
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("read the server log: %v", err)
	}
	if found := leaks(strings.Split(string(data), "\n"), passwords...); len(found) > 0 {
		t.Errorf("the server log %s shows a password in %d lines", logFile, len(found))
	}
}

// TestRotationSendsOnlyHashes rotates a single user and an alternating
// pair through the relay (plaintext, which REDIS_PLAINTEXT_SERVERS allows
// for the relay's address only) and reads what the function sent: every
// password it set travels as its SHA-256 in ACL SETUSER, and no command
// but a login (AUTH, as every client's) carries a password of the secret
// or the master user's. SLOWLOG and the server log, scanned too, show
// none either.
func TestRotationSendsOnlyHashes(t *testing.T) {
	s := redistest.Settings(t)
	relay := s.Relay(t)
	ep := relay.Endpoint()
	cfg := config(t)
	cfg.PlaintextServers = []string{fmt.Sprintf("%s:%d", ep.Host, ep.Port)}
	tgt, _ := newTarget(t, cfg, testbed.AWSConfig(t))
	h := dbtest.NewHarness(t, tgt)
	at := map[string]any{"host": ep.Host, "port": ep.Port, "ssl": false}
	masterARN := masterSecret(t, h.Em, s, at)
	var passwords []string // every password a version holds
	for _, strategy := range []string{"single-user", "alternating-users"} {
		user, pw := appUser(t, s, "hash_")
		extra := map[string]any{"masterarn": masterARN, "strategy": strategy}
		maps.Copy(extra, at)
		arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, fields(s, user, pw, extra)))
		passwords = append(passwords, pw)
		for i := 0; i < 2; i++ {
			if _, err := h.Rotate(arn); err != nil {
				t.Fatalf("%s, rotation %d through the relay: %v", strategy, i+1, err)
			}
			passwords = append(passwords, h.Current(arn).Password)
		}
	}
	cmds, err := relay.Commands()
	if err != nil {
		t.Fatalf("parse what the function sent: %v", err)
	}
	var sent []string
	logins := 0
	for _, c := range cmds {
		if strings.EqualFold(c[0], "AUTH") {
			logins++
			continue
		}
		sent = append(sent, strings.Join(c, " "))
	}
	if logins < 8 {
		t.Fatalf("the relay saw %d logins of 4 rotations: did the function go through it?", logins)
	}
	for _, pw := range passwords[1:] {
		if pw == passwords[3] {
			continue // the alternating secret's first password, set by the test
		}
		if len(leaks(sent, "#"+redis.PasswordHash(pw))) == 0 {
			t.Errorf("no ACL SETUSER the function sent carries the hash of a password it set (%d commands)", len(sent))
		}
	}
	if found := leaks(sent, append(passwords, s.AdminPassword)...); len(found) > 0 {
		t.Errorf("a command other than a login carried a password in plaintext: %d commands, e.g. one starting %q", len(found), strings.Fields(found[0])[0])
	}
	if found := leaks(s.SlowLog(t), append(passwords, s.AdminPassword)...); len(found) > 0 {
		t.Errorf("SLOWLOG shows a password in %d entries", len(found))
	}
	logFile := testbed.EnvFile(t, "redis.env", "scripts/redis.sh")["REDIS_LOG_FILE"]
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("read the server log: %v", err)
	}
	if found := leaks(strings.Split(string(data), "\n"), append(passwords, s.AdminPassword)...); len(found) > 0 {
		t.Errorf("the server log shows a password in %d lines", len(found))
	}
	h.AssertNoSecretInLogs(append(passwords, s.AdminPassword)...)
	assertNoHashInLogs(t, h.Logs(), passwords...)
}
