package directory_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestLoadCountsRefusedBindsAsTheServerDoes checks the zero-downtime
// measuring equipment itself: clients binding with the credentials stored
// in the secret count every refused bind, and the server's own log counts
// the same ones.
func TestLoadCountsRefusedBindsAsTheServerDoes(t *testing.T) {
	const clients, perClient = 3, 5
	em := testbed.Emulator(t)

	type server struct {
		name string
		ep   directory.Endpoint
		// add makes an account and returns its DN and log name.
		add func(pw string) (dn, logName string)
		// reset changes dn's password behind the clients' back.
		reset func(dn, pw string)
		// failed counts refused logins of logName since mark was called.
		mark func() func(logName string) int
	}
	slapd := dirtest.LoadSlapd(t)
	samba := dirtest.LoadSamba(t)
	servers := []server{
		{
			name: "OpenLDAP", ep: slapd.Endpoint(t, directory.LDAPS),
			add: func(pw string) (string, string) {
				dn := slapd.AddAccount(t, slapd.ServicesOU(), pw, "")
				return dn, strings.ToLower(dn)
			},
			reset: func(dn, pw string) {
				c := mustConnect(t, slapd.Endpoint(t, directory.LDAPS), slapd.RotatorDN, slapd.RotatorPassword)
				if err := c.SetPassword(testCtx(t), dn, pw); err != nil {
					t.Fatal(err)
				}
			},
			mark: func() func(string) int {
				m := dirtest.MarkSlapdLog(t, slapd)
				return func(name string) int { return m.FailedBinds(t)[name] }
			},
		},
		{
			name: "Samba AD", ep: samba.Endpoint(t),
			add: func(pw string) (string, string) {
				u := samba.AddUser(t, samba.ServicesOU, pw)
				return u.DN, u.SAMAccountName
			},
			reset: func(dn, pw string) {
				// Two resets: the DC accepts the previous password in an
				// LDAP simple bind for its old password allowed period
				// (see TestADSetOwnPassword), not the one before that.
				c := mustConnect(t, samba.Endpoint(t), samba.RotatorDN, samba.RotatorPassword)
				for _, p := range []string{dirtest.Password(), pw} {
					if err := c.SetPassword(testCtx(t), dn, p); err != nil {
						t.Fatal(err)
					}
				}
			},
			mark: func() func(string) int {
				m := dirtest.MarkSambaLog(t, samba)
				return func(name string) int {
					n := 0
					for _, a := range m.Failed(t) {
						if strings.Contains(a.Account, name) {
							n++
						}
					}
					return n
				}
			},
		},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			pw := dirtest.Password()
			dn, logName := s.add(pw)
			store := func(pw string) string {
				b, _ := json.Marshal(map[string]string{"username": dn, "password": pw})
				return string(b)
			}
			arn := testbed.CreateSecret(t, em, store(pw))
			load := dirtest.Load{Clients: clients, Current: dirtest.StoredCreds(em.SM, arn), Bind: dirtest.BindWith(s.ep)}
			run := func(wantRefused int64) {
				t.Helper()
				failed := s.mark()
				st, err := load.Run(testCtx(t), perClient)
				if err != nil {
					t.Fatal(err)
				}
				if st.Binds != clients*perClient || st.OtherErrors != 0 {
					t.Fatalf("%d binds, %d other errors (first: %v); want %d binds and none", st.Binds, st.OtherErrors, st.FirstOther, clients*perClient)
				}
				if st.Refused != wantRefused {
					t.Fatalf("clients counted %d refused binds, want %d", st.Refused, wantRefused)
				}
				if n := failed(logName); int64(n) != wantRefused {
					t.Fatalf("the server logged %d refused logins of %s, the clients counted %d", n, logName, wantRefused)
				}
			}
			run(0)
			// The password changes and the secret does not follow: every
			// bind is refused, on both sides.
			next := dirtest.Password()
			s.reset(dn, next)
			run(clients * perClient)
			// The secret follows: none is.
			if _, err := em.SM.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(arn), SecretString: aws.String(store(next)),
			}); err != nil {
				t.Fatal(err)
			}
			run(0)
		})
	}
}
