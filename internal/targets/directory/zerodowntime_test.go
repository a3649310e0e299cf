package directory_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/loadtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// The zero-downtime tests: clients keep logging in with the credentials of
// AWSCURRENT (re-read every 5 ms, as a caching client does) while
// rotations run back to back, and count what the directory refused; the
// server's own log counts the same. Alternating accounts must see no
// refused login on either side. A single account's password changes in
// setSecret, and clients holding AWSCURRENT are refused until finishSecret
// moves the label: the tests measure that window, and show that a client
// that retries with AWSPENDING after a refusal is never refused in the end.

const zdClients, zdRotations = 4, 5

// clientKind is how a client of the directory logs in.
type clientKind struct {
	name  string
	login func(s server, cfg directory.Config) loadtest.LoginFunc
}

// bindClient binds with the account's DN and password.
var bindClient = clientKind{"LDAP simple bind", func(s server, cfg directory.Config) loadtest.LoginFunc {
	return func(ctx context.Context, dn, pw string) error { return s.bind(dn, pw) }
}}

// kerberosClient obtains a Kerberos ticket-granting ticket for the
// account's sAMAccountName (its cn in the test bed), as a service that
// authenticates with Kerberos does.
var kerberosClient = clientKind{"Kerberos", func(s server, cfg directory.Config) loadtest.LoginFunc {
	return func(ctx context.Context, dn, pw string) error {
		sam, err := firstRDNValue(dn)
		if err != nil {
			return err
		}
		return directory.KerberosLogin(ctx, cfg.Kerberos, 5*time.Second, sam, pw)
	}
}}

// clientsOf are the kinds of client a directory has: Active Directory's
// services authenticate with Kerberos or with LDAP binds (which the DC
// treats differently after a password change), OpenLDAP's with binds.
func clientsOf(s server, cfg directory.Config) []clientKind {
	if cfg.Kind == directory.ActiveDirectory {
		return []clientKind{kerberosClient, bindClient}
	}
	return []clientKind{bindClient}
}

func firstRDNValue(dn string) (string, error) {
	d, err := ldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 {
		return "", fmt.Errorf("%q is not a DN", dn)
	}
	return d.RDNs[0].Attributes[0].Value, nil
}

// refusals records when refused logins were in flight.
type refusals struct {
	mu    sync.Mutex
	times []span // from the start of the login to its refusal
}

func (r *refusals) wrap(login loadtest.LoginFunc) loadtest.LoginFunc {
	return func(ctx context.Context, user, pw string) error {
		start := time.Now()
		err := login(ctx, user, pw)
		if errors.Is(err, account.ErrCannotLogIn) {
			r.mu.Lock()
			r.times = append(r.times, span{start, time.Now()})
			r.mu.Unlock()
		}
		return err
	}
}

// per groups the refused logins by rotation: a login belongs to the last
// rotation whose setSecret started before the login did. It returns, per
// rotation, how many were refused and the time from the start of the
// first to the refusal of the last; and the refusals that started before
// any setSecret (there must be none: nothing had changed yet).
func (r *refusals) per(spans []span) (counts []int, windows []time.Duration, before int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts = make([]int, len(spans))
	first := make([]time.Time, len(spans))
	last := make([]time.Time, len(spans))
	for _, l := range r.times {
		i := -1
		for j, sp := range spans {
			if !l.set.Before(sp.set) {
				i = j
			}
		}
		if i < 0 {
			before++
			continue
		}
		if counts[i] == 0 || l.set.Before(first[i]) {
			first[i] = l.set
		}
		if l.finished.After(last[i]) {
			last[i] = l.finished
		}
		counts[i]++
	}
	for i := range spans {
		if counts[i] > 0 {
			windows = append(windows, last[i].Sub(first[i]))
		}
	}
	return counts, windows, before
}

// retrying is a client of a single account that, refused, tries AWSPENDING
// and AWSCURRENT afresh (up to ten rounds, 10 ms apart: the labels may move
// between two reads).
func retrying(login loadtest.LoginFunc, pending, current loadtest.ReadFunc) loadtest.LoginFunc {
	return func(ctx context.Context, user, pw string) error {
		err := login(ctx, user, pw)
		for round := 0; round < 10 && errors.Is(err, account.ErrCannotLogIn); round++ {
			if round > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			for _, read := range []loadtest.ReadFunc{pending, current} {
				if c, rerr := read(ctx); rerr == nil {
					if err = login(ctx, c.User, c.Password); err == nil {
						break
					}
				}
			}
		}
		return err
	}
}

// span is when a rotation's password change could begin (setSecret
// started) and when its finishSecret returned; or when a login started and
// when it was refused.
type span struct{ set, finished time.Time }

// rotateTimed runs r rotations of arn back to back, step by step.
func rotateTimed(t *testing.T, h *dbtest.Harness, arn string, r int) []span {
	t.Helper()
	var out []span
	for i := 1; i <= r; i++ {
		token := h.Open(arn)
		var sp span
		for _, step := range localrun.Steps {
			if step == "setSecret" {
				sp.set = time.Now()
			}
			if err := h.Step(nil, step, arn, token); err != nil {
				t.Fatalf("rotation %d under load, %s: %v", i, step, err)
			}
		}
		sp.finished = time.Now()
		if err := h.Em.CloseRotation(context.Background(), arn, token); err != nil {
			t.Fatal(err)
		}
		out = append(out, sp)
	}
	return out
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// load is one kind of client running against a secret.
type load struct {
	kind string
	run  *loadtest.Run
	ref  *refusals
}

func startLoads(t *testing.T, s server, cfg directory.Config, em *localrun.Emulator, arn string, retry bool) []load {
	t.Helper()
	current := loadtest.FromSecret(em.SM, arn, "AWSCURRENT")
	pending := loadtest.FromSecret(em.SM, arn, "AWSPENDING")
	var out []load
	for _, k := range clientsOf(s, cfg) {
		login := k.login(s, cfg)
		if retry {
			login = retrying(login, pending, current)
		}
		ref := &refusals{}
		run, err := loadtest.Start(context.Background(), current, ref.wrap(login), loadtest.Options{Clients: zdClients, MaxDuration: 3 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { run.Stop() })
		out = append(out, load{kind: k.name, run: run, ref: ref})
	}
	return out
}

// stopAll stops the loads and waits for their logins in flight, so that
// the server's log holds every one of them.
func stopAll(loads []load) []loadtest.Stats {
	out := make([]loadtest.Stats, len(loads))
	for i, l := range loads {
		out[i] = l.run.Stop()
	}
	return out
}

// TestZeroDowntimeAlternatingAccounts: no client is refused, and the
// directory's own log shows no refused login of either account.
func TestZeroDowntimeAlternatingAccounts(t *testing.T) {
	for _, s := range servers(t) {
		t.Run(s.name, func(t *testing.T) {
			cfg := s.config(t)
			em := testbed.Emulator(t)
			h := dbtest.NewHarness(t, target(cfg, testbed.AWSConfig(t)))
			f := s.newFixture(t, em, alternating, nil)
			refused := s.refused(t)
			loads := startLoads(t, s, cfg, em, f.arn, false)
			time.Sleep(50 * time.Millisecond)
			rotateTimed(t, h, f.arn, zdRotations)
			time.Sleep(50 * time.Millisecond)
			stats := stopAll(loads)
			server := refused(f.names()...)
			for i, l := range loads {
				st := stats[i]
				t.Logf("%s, alternating accounts, %s clients: %d clients, %d rotations in %v: %d logins, %d refused, %d other errors; refused in the server's log (all clients): %d",
					s.name, l.kind, st.Clients, zdRotations, st.Duration.Round(time.Millisecond), st.Logins, st.Refused, st.OtherErrors, server)
				if st.Refused != 0 || st.OtherErrors != 0 || st.Logins < 50 {
					t.Fatalf("%s clients: want no failed login out of at least 50: %v (last error: %v)", l.kind, st, st.LastError)
				}
			}
			if server != 0 {
				t.Fatalf("the server logged %d refused logins of %v during the rotations", server, f.names())
			}
		})
	}
}

// TestZeroDowntimeSingleAccount measures the window in which clients that
// hold AWSCURRENT are refused (the password changed at setSecret and the
// label moves at finishSecret), and shows that clients retrying with
// AWSPENDING end with no refused login. On Active Directory the window is
// the KDC's: the DC goes on accepting the previous password in LDAP simple
// binds for its "old password allowed period".
func TestZeroDowntimeSingleAccount(t *testing.T) {
	for _, s := range servers(t) {
		for _, retry := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/retry with AWSPENDING %v", s.name, retry), func(t *testing.T) {
				cfg := s.config(t)
				em := testbed.Emulator(t)
				h := dbtest.NewHarness(t, target(cfg, testbed.AWSConfig(t)))
				f := s.newFixture(t, em, single, nil)
				refused := s.refused(t)
				loads := startLoads(t, s, cfg, em, f.arn, retry)
				time.Sleep(50 * time.Millisecond)
				spans := rotateTimed(t, h, f.arn, zdRotations)
				time.Sleep(50 * time.Millisecond)
				stats := stopAll(loads)
				server := refused(f.names()...)
				var steps []time.Duration
				for _, sp := range spans {
					steps = append(steps, sp.finished.Sub(sp.set))
				}
				for i, l := range loads {
					st := stats[i]
					counts, windows, before := l.ref.per(spans)
					t.Logf("%s, single account, %s clients, retry with AWSPENDING %v: %d clients, %d rotations in %v: %d logins, %d refused (per rotation %v; first refused login to last refusal, median %v), %d other errors; setSecret start to finishSecret end, median %v; refused in the server's log (all clients, retried attempts included): %d",
						s.name, l.kind, retry, st.Clients, zdRotations, st.Duration.Round(time.Millisecond), st.Logins, st.Refused, counts,
						median(windows).Round(time.Millisecond), st.OtherErrors, median(steps).Round(time.Millisecond), server)
					if st.OtherErrors != 0 || st.Logins < 50 {
						t.Fatalf("%s clients: unexpected errors or too few logins: %v (last error: %v)", l.kind, st, st.LastError)
					}
					if retry && st.Refused != 0 {
						t.Fatalf("%s clients that retry with AWSPENDING saw %d refused logins (last: %v)", l.kind, st.Refused, st.LastError)
					}
					if before != 0 {
						t.Fatalf("%s clients: %d logins refused before the first setSecret changed anything", l.kind, before)
					}
				}
			})
		}
	}
}
