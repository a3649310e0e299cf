package dbtarget_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// countingDriver counts the logins a target makes, as the driver sees them.
type countingDriver struct {
	dbtarget.Driver
	mu              sync.Mutex
	logins, refused int
}

func (d *countingDriver) Connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (dbtarget.Conn, error) {
	c, err := d.Driver.Connect(ctx, ep, user, password)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logins++
	if errors.Is(err, dbsecret.ErrCannotLogIn) {
		d.refused++
	}
	return c, err
}

func (d *countingDriver) counts() (int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logins, d.refused
}

// serverLog counts the logins the server itself logged as refused, for
// the given users, from its log file (scripts/db.sh writes its path into
// db.env: PostgreSQL logs "password authentication failed" as FATAL, MariaDB
// "Access denied" at log_warnings=2).
type serverLog struct {
	file   string
	offset int64
	line   func(user string) string
}

func newServerLog(t testing.TB, e engine) *serverLog {
	st := dbtest.Settings(t)
	l := &serverLog{file: st["PG_LOG_FILE"], line: func(u string) string { return `password authentication failed for user "` + u + `"` }}
	if e.name == "mariadb" {
		l = &serverLog{file: st["MYSQL_ERROR_LOG"], line: func(u string) string { return "Access denied for user '" + u + "'@" }}
	}
	if l.file == "" {
		t.Fatal("db.env names no server log file: restart the databases with scripts/db.sh up")
	}
	fi, err := os.Stat(l.file)
	if err != nil {
		t.Fatal(err)
	}
	l.offset = fi.Size()
	return l
}

// refused returns how many refused logins of users the server logged since
// the serverLog was made. It first makes one refused login of its own, and
// waits until the server has logged it, so that every line before it is in
// the file and the count is known to see what the server logs.
func (l *serverLog) refused(t testing.TB, e engine, users ...string) int {
	t.Helper()
	marker := dbtest.Name("marker")
	if err := e.login(t, marker, "wrong"); !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("the marker login was not refused: %v", err)
	}
	for i := 0; ; i++ {
		b, err := os.ReadFile(l.file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b[min(l.offset, int64(len(b))):])
		if strings.Contains(text, l.line(marker)) {
			n := 0
			for _, u := range users {
				n += strings.Count(text, l.line(u))
			}
			return n
		}
		if i == 200 {
			t.Fatalf("the server did not log the marker's refused login in %s", l.file)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLoginsPerRotation counts the database logins of each step, from the
// driver's side, and the refused logins in the server's own log: a rotation
// that goes as planned makes no refused login. Budgets: single user, one
// login to set (AWSCURRENT) and one to test (AWSPENDING); alternating users,
// three (the proof that the secret controls the idle user, the master user,
// and the test).
func TestLoginsPerRotation(t *testing.T) {
	for _, e := range engines(t) {
		for _, alternating := range []bool{false, true} {
			name := e.name + "/single user"
			want := map[string]int{rotation.StepCreate: 0, rotation.StepSet: 1, rotation.StepTest: 1, rotation.StepFinish: 0}
			if alternating {
				name = e.name + "/alternating users"
				want[rotation.StepSet] = 2
			}
			t.Run(name, func(t *testing.T) {
				drv := &countingDriver{Driver: e.driver}
				h := dbtest.NewHarness(t, e.targetOver(t, drv, nil))
				user, pw := e.user(t, "count")
				users := []string{user, user + dbsecret.CloneSuffix}
				var extra map[string]any
				if alternating {
					master, mpw := e.masterUser(t)
					users = append(users, master)
					extra = map[string]any{"masterarn": testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, master, mpw, nil)))}
				}
				arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, e.secret(t, user, pw, extra)))
				log := newServerLog(t, e)
				// Three rotations: alternating, the first makes the clone,
				// the second goes back to the user, the third to the clone.
				for r := 1; r <= 3; r++ {
					token := h.Open(arn)
					for _, step := range localrun.Steps {
						before, _ := drv.counts()
						if err := h.Step(nil, step, arn, token); err != nil {
							t.Fatalf("rotation %d, %s: %v", r, step, err)
						}
						after, _ := drv.counts()
						if after-before != want[step] {
							t.Errorf("rotation %d, %s: %d logins, want %d", r, step, after-before, want[step])
						}
					}
					if err := h.Em.CloseRotation(context.Background(), arn, token); err != nil {
						t.Fatal(err)
					}
				}
				logins, refusedByDriver := drv.counts()
				refusedByServer := log.refused(t, e, users...)
				t.Logf("%s: 3 rotations, %d logins, %d refused (driver), %d refused (server log); Secrets Manager calls per step: %s",
					name, logins, refusedByDriver, refusedByServer, callsPerStep(t, h.Logs()))
				if refusedByDriver != 0 || refusedByServer != 0 {
					t.Fatalf("refused logins: %d seen by the driver, %d in the server's log", refusedByDriver, refusedByServer)
				}
			})
		}
	}
}

// callsPerStep sums the engine's secretsmanager_calls per step.
func callsPerStep(t testing.TB, logs string) string {
	sum := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec struct {
			Msg   string `json:"msg"`
			Step  string `json:"step"`
			Calls int    `json:"secretsmanager_calls"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "rotation step done" {
			sum[rec.Step] += rec.Calls
		}
	}
	var out []string
	for _, s := range localrun.Steps {
		out = append(out, fmt.Sprintf("%s %d", s, sum[s]))
	}
	return strings.Join(out, ", ")
}
