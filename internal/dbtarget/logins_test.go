package dbtarget_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

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
				log := dbtest.PGLog(t)
				if e.name == "mariadb" {
					log = dbtest.MyLog(t)
				}
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
				refusedByServer := log.Refused(t, users...)
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
