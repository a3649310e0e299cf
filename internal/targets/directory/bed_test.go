package directory_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/directory/dirtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// server is one directory of the test bed as the function's tests see it:
// its configuration, its fixtures, a client's login and the server's own
// count of refused logins.
type server struct {
	name string
	// env is the function's configuration for this directory.
	env map[string]string
	// add makes an account named cn (its RDN value) below the allowed base
	// DN and returns its DN; outside makes one in a container outside it,
	// which the master user may not reset either.
	add, outside func(t testing.TB, cn, password string) string
	// masterDN and masterPassword are the password administrator's.
	masterDN, masterPassword string
	// reset sets a password as the directory's own administrator.
	reset func(t testing.TB, dn, password string)
	// login is a client's login: a bind, and on Active Directory a
	// Kerberos ticket too (the DC accepts an account's previous password
	// in simple binds for an hour; the KDC does not).
	login func(t testing.TB, dn, password string) error
	// bind is an LDAP simple bind alone.
	bind func(dn, password string) error
	// refused returns a function that counts the refused logins of the
	// named accounts (their RDN values) that the server logged since.
	refused func(t testing.TB) func(names ...string) int
	// masterBinds returns a function that counts the master user's logins
	// that the server logged since.
	masterBinds func(t testing.TB) func() int
	// logFiles are the server's own logs, scanned for passwords.
	logFiles func(t testing.TB) []string
}

func slapdServer(t testing.TB) server {
	s := dirtest.LoadSlapd(t)
	ep := s.Endpoint(t, directory.LDAPS)
	return server{
		name: "OpenLDAP",
		env: map[string]string{
			"DIRECTORY_KIND":             "ldap",
			"DIRECTORY_URL":              "ldaps://" + s.Host + ":" + s.TLSPort,
			"DIRECTORY_ALLOWED_BASE_DNS": s.ServicesOU(),
			"DIRECTORY_CA_BUNDLE":        s.CAFile,
		},
		add: func(t testing.TB, cn, pw string) string {
			return s.AddAccountNamed(t, s.ServicesOU(), cn, pw, "")
		},
		outside: func(t testing.TB, cn, pw string) string {
			return s.AddAccountNamed(t, s.PeopleOU(), cn, pw, "")
		},
		masterDN: s.RotatorDN, masterPassword: s.RotatorPassword,
		reset: s.SetPassword,
		login: func(t testing.TB, dn, pw string) error { return bindAt(ep, dn, pw) },
		bind:  func(dn, pw string) error { return bindAt(ep, dn, pw) },
		refused: func(t testing.TB) func(...string) int {
			m := dirtest.MarkSlapdLog(t, s)
			return func(names ...string) int {
				n := 0
				for dn, c := range m.FailedBinds(t) {
					if slices.ContainsFunc(names, func(name string) bool { return strings.HasPrefix(dn, "uid="+strings.ToLower(name)+",") }) {
						n += c
					}
				}
				return n
			}
		},
		masterBinds: func(t testing.TB) func() int {
			m := dirtest.MarkSlapdLog(t, s)
			return func() int { return m.Read(t).ByDN[strings.ToLower(s.RotatorDN)] }
		},
		logFiles: func(testing.TB) []string { return []string{s.Log} },
	}
}

func sambaServer(t testing.TB) server {
	s := dirtest.LoadSamba(t)
	ep := s.Endpoint(t)
	return server{
		name: "Samba AD",
		env: map[string]string{
			"DIRECTORY_KIND":             "activedirectory",
			"DIRECTORY_URL":              "ldaps://" + s.Host + ":" + s.LDAPSPort,
			"DIRECTORY_ALLOWED_BASE_DNS": s.ServicesOU,
			"DIRECTORY_KERBEROS_REALM":   s.Realm,
			"DIRECTORY_KERBEROS_KDCS":    s.KDC,
			"DIRECTORY_CA_BUNDLE":        s.CAFile,
		},
		// The sAMAccountName is the cn: at most 20 characters, which
		// dirtest.Name("svc") plus "_clone" keeps to.
		add: func(t testing.TB, cn, pw string) string {
			return s.AddUserNamed(t, s.ServicesOU, cn, cn, pw).DN
		},
		outside: func(t testing.TB, cn, pw string) string {
			return s.AddUserNamed(t, s.UsersCN(), cn, cn, pw).DN
		},
		masterDN: s.RotatorDN, masterPassword: s.RotatorPassword,
		reset: s.SetPassword,
		login: func(t testing.TB, dn, pw string) error {
			c, err := directory.Connect(context.Background(), ep, dn, pw)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Probe(context.Background())
		},
		bind: func(dn, pw string) error { return bindAt(ep, dn, pw) },
		refused: func(t testing.TB) func(...string) int {
			m := dirtest.MarkSambaLog(t, s)
			return func(names ...string) int {
				n := 0
				for _, a := range m.Failed(t) {
					if slices.ContainsFunc(names, func(name string) bool { return strings.Contains(strings.ToLower(a.Account), strings.ToLower(name)) }) {
						n++
					}
				}
				return n
			}
		},
		masterBinds: func(t testing.TB) func() int {
			m := dirtest.MarkSambaLog(t, s)
			return func() int {
				n := 0
				for _, a := range m.Read(t) {
					if strings.Contains(strings.ToLower(a.Account), "rotator") {
						n++
					}
				}
				return n
			}
		},
		logFiles: func(t testing.TB) []string {
			files, err := filepath.Glob(filepath.Join(filepath.Dir(s.AuthLog), "*"))
			if err != nil || len(files) == 0 {
				t.Fatalf("Samba's logs next to %s: %v", s.AuthLog, err)
			}
			return files
		},
	}
}

// bindAt binds to ep once and closes the session.
func bindAt(ep directory.Endpoint, dn, pw string) error {
	c, err := directory.Connect(context.Background(), ep, dn, pw)
	if err != nil {
		return err
	}
	return c.Close()
}

// servers are both directories of the test bed.
func servers(t testing.TB) []server { return []server{slapdServer(t), sambaServer(t)} }

// config is the function's configuration for s, with the variables of
// extra ("" removes one) on top.
func (s server) config(t testing.TB, extra ...string) directory.Config {
	t.Helper()
	env := maps.Clone(s.env)
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	cfg, err := directory.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("configuration of %s: %v", s.name, err)
	}
	return cfg
}

// environ is s's configuration as a function's environment.
func (s server) environ() []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(s.env)) {
		out = append(out, k+"="+s.env[k])
	}
	return out
}

// target is the function's target over cfg, with its Secrets Manager
// client made from awsCfg.
func target(cfg directory.Config, awsCfg aws.Config) *account.Target {
	return directory.New(cfg, secretsmanager.NewFromConfig(awsCfg))
}

// strategy is how a test secret is rotated.
type strategy string

const (
	single         strategy = "single account"
	singleByMaster strategy = "single account set by the master"
	alternating    strategy = "alternating accounts"
)

var strategies = []strategy{single, singleByMaster, alternating}

// fixture is a secret to rotate and the accounts behind it.
type fixture struct {
	arn               string
	base, clone       string // DNs; clone is empty for a single account
	baseCN, cloneCN   string
	password          string // the base account's first password
	masterARN         string
	masterDN, masterP string
}

// names returns the RDN values of the fixture's accounts.
func (f fixture) names() []string {
	if f.cloneCN == "" {
		return []string{f.baseCN}
	}
	return []string{f.baseCN, f.cloneCN}
}

// newFixture makes the accounts of st (the alternating pair exists before
// the first rotation: the function never creates accounts) and stores the
// secret, with the fields of extra.
func (s server) newFixture(t testing.TB, em *localrun.Emulator, st strategy, extra map[string]any) fixture {
	t.Helper()
	f := fixture{baseCN: dirtest.Name("svc"), password: dirtest.Password()}
	f.base = s.add(t, f.baseCN, f.password)
	fields := map[string]any{"username": f.base, "password": f.password}
	if st != single {
		f.masterDN, f.masterP = s.masterDN, s.masterPassword
		f.masterARN = testbed.CreateSecret(t, em, secretJSON(t, map[string]any{"username": s.masterDN, "password": s.masterPassword}))
		fields["masterarn"] = f.masterARN
	}
	if st == singleByMaster {
		fields["strategy"] = "single"
	}
	if st == alternating {
		f.cloneCN = f.baseCN + directory.DefaultCloneSuffix
		// The clone's own password is one nobody stored: the first
		// rotation resets it.
		f.clone = s.add(t, f.cloneCN, dirtest.Password())
	}
	maps.Copy(fields, extra)
	f.arn = testbed.CreateSecret(t, em, secretJSON(t, fields))
	return f
}

func secretJSON(t testing.TB, fields map[string]any) string {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// crashSpec describes a directory and a strategy to dbtest's shared crash
// tests. Its crashing target dies after each LDAP and Kerberos call too.
func (s server) crashSpec(t *testing.T, st strategy) dbtest.CrashSpec {
	cfg := s.config(t)
	return dbtest.CrashSpec{
		NewTarget: func(awsCfg aws.Config) rotation.Target { return target(cfg, awsCfg) },
		NewCrashingTarget: func(awsCfg aws.Config, c *testbed.Crasher) rotation.Target {
			sm := secretsmanager.NewFromConfig(awsCfg)
			return account.New(cfg.Config, crashingDriver{Driver: directory.NewDriver(cfg), c: c}, sm)
		},
		NewSecret: func(t *testing.T, em *localrun.Emulator) string { return s.newFixture(t, em, st, nil).arn },
		Login: func(t testing.TB, sec *dbsecret.Secret) error {
			return s.login(t, sec.Username, sec.Password)
		},
		// The crash tests name the user by its secret's username: a DN.
		SetPassword:          func(t testing.TB, dn, pw string) { s.reset(t, dn, pw) },
		MasterSetsSingleUser: st == singleByMaster,
		NewPassword:          dirtest.Password,
	}
}

// crashingDriver is the directory driver whose every call to the
// directory or the KDC (a login, a read, a password change) counts in a
// Crasher's sequence, so that a crash test kills the function after each of
// them.
type crashingDriver struct {
	account.Driver
	c *testbed.Crasher
}

func (d crashingDriver) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	var s account.Session
	err := d.c.Do("directory login as "+req.Username, func() (err error) {
		s, err = d.Driver.Connect(ctx, req)
		return err
	})
	if err != nil {
		if s != nil {
			s.Close()
		}
		return nil, err
	}
	return crashingSession{Session: s, c: d.c}, nil
}

type crashingSession struct {
	account.Session
	c *testbed.Crasher
}

func (s crashingSession) Probe(ctx context.Context) error {
	return s.c.Do("directory probe", func() error { return s.Session.Probe(ctx) })
}

func (s crashingSession) SetOwnPassword(ctx context.Context, req account.SetOwnPasswordRequest) error {
	return s.c.Do("directory password change", func() error { return s.Session.SetOwnPassword(ctx, req) })
}

func (s crashingSession) SetPassword(ctx context.Context, req account.SetPasswordRequest) error {
	return s.c.Do("directory password reset", func() error { return s.Session.SetPassword(ctx, req) })
}

func (s crashingSession) EnsureClone(ctx context.Context, req account.EnsureCloneRequest) error {
	return s.c.Do("directory clone reset", func() error { return s.Session.EnsureClone(ctx, req) })
}

// countingDriver counts the logins a target makes, and those refused.
type countingDriver struct {
	account.Driver
	mu              sync.Mutex
	logins, refused int
}

func (d *countingDriver) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	s, err := d.Driver.Connect(ctx, req)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logins++
	if errors.Is(err, account.ErrCannotLogIn) {
		d.refused++
	}
	return s, err
}

func (d *countingDriver) counts() (int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.logins, d.refused
}

// current reads the stage's username and password.
func current(t testing.TB, em *localrun.Emulator, arn, stage string) (dn, pw string) {
	t.Helper()
	var v struct{ Username, Password string }
	if err := json.Unmarshal([]byte(testbed.ValueAt(t, em, arn, stage)), &v); err != nil {
		t.Fatal(err)
	}
	return v.Username, v.Password
}

// rotateOnce runs one rotation through h, stopping at the first failing
// step, and returns its token.
func rotateOnce(t testing.TB, h *dbtest.Harness, arn string) (string, error) {
	t.Helper()
	token := h.Open(arn)
	for _, step := range localrun.Steps {
		if err := h.Step(nil, step, arn, token); err != nil {
			return token, err
		}
	}
	return token, h.Em.CloseRotation(context.Background(), arn, token)
}

// versions reads every version of a secret: value and sorted labels.
func versions(t testing.TB, em *localrun.Emulator, arn string) map[string]string {
	t.Helper()
	out := map[string]string{}
	p := secretsmanager.NewListSecretVersionIdsPaginator(em.SM, &secretsmanager.ListSecretVersionIdsInput{
		SecretId: aws.String(arn), IncludeDeprecated: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.Versions {
			id := aws.ToString(v.VersionId)
			val := ""
			if got, err := em.SM.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(id)}); err == nil {
				val = aws.ToString(got.SecretString)
			}
			stages := slices.Sorted(slices.Values(v.VersionStages))
			out[id] = strings.Join(stages, ",") + " " + val
		}
	}
	return out
}

// unchanged asserts that every version that existed before is as it was,
// and that the only new one is token's, labelled AWSPENDING only.
func unchanged(t testing.TB, em *localrun.Emulator, arn, token string, before map[string]string) {
	t.Helper()
	after := versions(t, em, arn)
	for id, b := range before {
		if after[id] != b {
			t.Fatalf("version %s changed", id)
		}
	}
	for id, a := range after {
		if _, ok := before[id]; !ok && (id != token || !strings.HasPrefix(a, "AWSPENDING ")) {
			t.Fatalf("new version %s (labels %s)", id, strings.Fields(a)[0])
		}
	}
}

// refusal asserts that err names every want and shows no secret.
func refusal(t testing.TB, err error, want []string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("the rotation was not refused")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("refusal %q does not say %q", err, w)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatal("the refusal shows a password")
		}
	}
}
