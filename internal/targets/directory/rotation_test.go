package directory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestRotation rotates a secret three times through the engine on each
// directory, in each strategy, and checks after every rotation what the
// strategy promises: AWSCURRENT logs in; a single account's previous
// password no longer does (on Active Directory: the KDC refuses it);
// alternating, AWSPREVIOUS still logs in as the other account. It counts
// the logins of each step and the refused logins in the server's own log:
// a rotation that goes as planned makes none.
func TestRotation(t *testing.T) {
	for _, s := range servers(t) {
		for _, st := range strategies {
			t.Run(s.name+"/"+string(st), func(t *testing.T) {
				cfg := s.config(t)
				drv := &countingDriver{Driver: directory.NewDriver(cfg)}
				em := testbed.Emulator(t)
				h := dbtest.NewHarness(t, account.New(cfg.Config, drv, secretsmanager.NewFromConfig(testbed.AWSConfig(t))))
				f := s.newFixture(t, em, st, nil)
				refusedByServer := 0
				want := map[string]int{rotation.StepCreate: 0, rotation.StepSet: 1, rotation.StepTest: 1, rotation.StepFinish: 0}
				if st != single {
					want[rotation.StepSet] = 2 // the proof, then the master user
				}
				seen := []string{f.password, f.masterP}
				prevUser, prevPW := f.base, f.password
				for r := 1; r <= 3; r++ {
					// The server's count covers the rotation, not the
					// checks below, which try passwords that must fail.
					refused := s.refused(t)
					token := h.Open(f.arn)
					for _, step := range localrun.Steps {
						before, _ := drv.counts()
						if err := h.Step(nil, step, f.arn, token); err != nil {
							t.Fatalf("rotation %d, %s: %v", r, step, err)
						}
						if after, _ := drv.counts(); after-before != want[step] {
							t.Errorf("rotation %d, %s: %d logins, want %d", r, step, after-before, want[step])
						}
					}
					if err := em.CloseRotation(context.Background(), f.arn, token); err != nil {
						t.Fatal(err)
					}
					refusedByServer += refused(f.names()...)
					user, pw := current(t, em, f.arn, "AWSCURRENT")
					seen = append(seen, pw)
					if err := s.login(t, user, pw); err != nil {
						t.Fatalf("rotation %d: AWSCURRENT does not log in: %v", r, err)
					}
					switch st {
					case alternating:
						wantUser := f.clone
						if r%2 == 0 {
							wantUser = f.base
						}
						if user != wantUser {
							t.Fatalf("rotation %d: AWSCURRENT names %s, want %s", r, user, wantUser)
						}
						if err := s.login(t, prevUser, prevPW); err != nil {
							t.Fatalf("rotation %d: AWSPREVIOUS (%s) no longer logs in: %v", r, prevUser, err)
						}
					default:
						if user != f.base {
							t.Fatalf("rotation %d: AWSCURRENT names %s, want %s", r, user, f.base)
						}
						if err := s.login(t, prevUser, prevPW); !errors.Is(err, account.ErrCannotLogIn) {
							t.Fatalf("rotation %d: the previous password still logs in (%v): a single account has one password", r, err)
						}
					}
					prevUser, prevPW = user, pw
				}
				logins, refusedByDriver := drv.counts()
				n := refusedByServer
				t.Logf("%s, %s: 3 rotations, %d logins, %d refused (function side), %d refused (server's log)", s.name, st, logins, refusedByDriver, n)
				if refusedByDriver != 0 || n != 0 {
					t.Fatalf("refused logins: %d seen by the function, %d in the server's log", refusedByDriver, n)
				}
				h.AssertNoSecretInLogs(seen...)
			})
		}
	}
}

// TestMinimumPasswordAgeNeedsTheMaster: an Active Directory account under
// a minimum password age cannot change its own password twice within that
// age (TestBadInputPasswordPolicy), so that a retried or early rotation
// fails; a password administrator's reset is not held to it. The secret
// then names a master secret and asks for "strategy": "single": the master
// user resets the account's own password, after AWSCURRENT proved control.
func TestMinimumPasswordAgeNeedsTheMaster(t *testing.T) {
	s := sambaServer(t)
	sb := dirtest.LoadSamba(t)
	em := testbed.Emulator(t)
	h := dbtest.NewHarness(t, target(s.config(t), testbed.AWSConfig(t)))
	f := s.newFixture(t, em, singleByMaster, nil)
	sb.AddToGroup(t, sb.MinAgeGroupDN, f.base)
	for r := 1; r <= 2; r++ {
		if _, err := rotateOnce(t, h, f.arn); err != nil {
			t.Fatalf("rotation %d: %v", r, err)
		}
		user, pw := current(t, em, f.arn, "AWSCURRENT")
		if err := s.login(t, user, pw); err != nil || user != f.base {
			t.Fatalf("rotation %d: AWSCURRENT (%s) does not log in: %v", r, user, err)
		}
	}
}
