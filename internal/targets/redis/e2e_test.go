package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/redis/redistest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// startFunction builds functions/redis and runs it under the Lambda
// Runtime Interface Emulator with the test CA as REDIS_CA_BUNDLE, the TLS
// listener as the one server where a credentials-only master secret may
// be used, and env; out receives everything it prints.
func startFunction(t *testing.T, out *testbed.LogBuffer, env ...string) *localrun.RIE {
	t.Helper()
	s := redistest.Settings(t)
	rie, err := localrun.StartRIE(context.Background(), localrun.RIEOptions{
		Binary: testbed.RIEBinary(t), Bootstrap: testbed.BuildFunction(t, "redis"), Output: out,
		Env: append([]string{
			"REDIS_CA_BUNDLE=" + s.CAFile, "LOG_LEVEL=debug",
			fmt.Sprintf("MASTER_ALLOWED_SERVERS=%s:%d", s.Host, s.TLSPort),
		}, env...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rie.Close() })
	return rie
}

// emulatorLine matches the emulator's own lines: its log ("27 Nov 2026
// 07:44:11,197 [INFO] (rapid) ...") and the START, END, REPORT and INIT
// lines of each invocation.
var emulatorLine = regexp.MustCompile(`^(\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2},\d{3} \[[A-Z]+\] |(START|END|REPORT) RequestId: |INIT (START|REPORT))`)

// functionLines returns the lines the function printed.
func functionLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !emulatorLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return lines
}

// assertJSONLines fails unless every line the function printed is a JSON
// object.
func assertJSONLines(t *testing.T, out string) {
	t.Helper()
	lines := functionLines(out)
	if len(lines) == 0 {
		t.Fatal("the function printed nothing")
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("the function printed a line that is not JSON: %q", l)
		}
	}
}

// TestEndToEndUnderRIE rotates a single-user secret and an alternating
// one twice each through the built function under the runtime emulator,
// the way Secrets Manager does. After each rotation AWSCURRENT logs in;
// the function's output holds the setSecret and finishSecret lines, only
// JSON lines, and no password or hash.
func TestEndToEndUnderRIE(t *testing.T) {
	s := redistest.Settings(t)
	var out testbed.LogBuffer
	rie := startFunction(t, &out)
	em := testbed.Emulator(t)
	// A master secret of credentials only: MASTER_ALLOWED_SERVERS says
	// where it may be used.
	masterARN := masterSecret(t, em, s, map[string]any{"host": nil, "port": nil, "engine": nil})
	seen := []string{s.AdminPassword}
	for _, strategy := range []string{"single-user", "alternating-users"} {
		user, pw := appUser(t, s, "e2e_")
		arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, fields(s, user, pw, map[string]any{"masterarn": masterARN, "strategy": strategy})))
		seen = append(seen, pw)
		h := dbtest.Harness{T: t, Em: em}
		for i := 0; i < 2; i++ {
			res, err := em.Rotate(context.Background(), arn, rie, localrun.Options{})
			if err != nil {
				t.Fatalf("%s, rotation %d: %v\n%s", strategy, i+1, err, out.String())
			}
			t.Logf("%s, rotation %d under RIE: %v", strategy, i+1, res.Duration)
			cur := h.Current(arn)
			if err := login(t, cur); err != nil {
				t.Fatalf("%s: AWSCURRENT after rotation %d does not log in: %v", strategy, i+1, err)
			}
			seen = append(seen, cur.Password)
		}
	}
	logs := out.String()
	for _, want := range []string{`"step":"setSecret"`, "passwords older than AWSPREVIOUS removed", `"strategy":"alternating-users"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the function's output lacks %s:\n%s", want, logs)
		}
	}
	for _, p := range seen {
		if strings.Contains(logs, p) || strings.Contains(logs, redis.PasswordHash(p)) {
			t.Fatal("a password or its hash appears in the function's output")
		}
	}
	assertJSONLines(t, logs)
}

// TestUnreachableServerUnderRIE: a server that refuses the connection
// fails setSecret with an error naming it; what the go-redis library says
// about the failed dial comes out as a JSON line like every other, not as
// plain text on standard error.
func TestUnreachableServerUnderRIE(t *testing.T) {
	s := redistest.Settings(t)
	port := testbed.FreeLoopbackPort(t)
	var out testbed.LogBuffer
	rie := startFunction(t, &out, fmt.Sprintf("MASTER_ALLOWED_SERVERS=%s:%d", s.Host, port))
	em := testbed.Emulator(t)
	masterARN := masterSecret(t, em, s, map[string]any{"host": nil, "port": nil, "engine": nil})
	arn := testbed.CreateSecret(t, em, dbtest.SecretJSON(t, fields(s, "app", redistest.Password(), map[string]any{"port": port, "masterarn": masterARN})))
	_, err := em.Rotate(context.Background(), arn, rie, localrun.Options{Attempts: 1})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("cannot reach %s:%d", s.Host, port)) {
		t.Fatalf("want setSecret to fail, unable to reach the server, got %v", err)
	}
	logs := out.String()
	if !strings.Contains(logs, `"msg":"redis client library"`) || !strings.Contains(logs, "failed to dial") {
		t.Fatalf("the library's message about the failed dial is not a JSON line:\n%s", logs)
	}
	assertJSONLines(t, logs)
}
