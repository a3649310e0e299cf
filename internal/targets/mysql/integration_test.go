package mysql_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtarget"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/targets/mysql"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

func newTarget(t testing.TB) *dbtarget.Target {
	cfg := testbed.AWSConfig(t)
	return dbtarget.New(dbtest.TargetConfig(t), mysql.Driver{}, secretsmanager.NewFromConfig(cfg), rds.NewFromConfig(cfg))
}

func login(t testing.TB, s *dbsecret.Secret) error {
	t.Helper()
	st := dbtest.Settings(t)
	port, _ := strconv.Atoi(st["MYSQL_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, st["MYSQL_HOST"], st["MYSQL_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ep := dbsecret.Endpoint{Host: st["MYSQL_HOST"], Port: port, TLS: tlsCfg, Timeout: 5e9}
	c, err := mysql.Driver{}.Connect(context.Background(), ep, s.Username, s.Password)
	if err == nil {
		c.Close()
	}
	return err
}

func mustLogIn(t testing.TB, what string, s *dbsecret.Secret) {
	t.Helper()
	if err := login(t, s); err != nil {
		t.Fatalf("%s does not log in: %v", what, err)
	}
}

func mustNotLogIn(t testing.TB, what string, s *dbsecret.Secret) {
	t.Helper()
	if err := login(t, s); !errors.Is(err, dbsecret.ErrCannotLogIn) {
		t.Fatalf("%s: want a refused login, got %v", what, err)
	}
}

func TestSingleUserRotation(t *testing.T) {
	user, pw := dbtest.MyUser(t, "app")
	h := dbtest.NewHarness(t, newTarget(t))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"extra": 7})))
	seen := []string{pw}
	old := h.Current(arn)
	for i := 0; i < 2; i++ {
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		cur := h.Current(arn)
		if cur.Username != user || cur.Password == old.Password {
			t.Fatalf("rotation %d: wrong user or unchanged password", i+1)
		}
		mustLogIn(t, "new AWSCURRENT", cur)
		mustNotLogIn(t, "old password", old)
		if raw, _ := cur.Raw("extra"); string(raw) != "7" {
			t.Fatalf("unknown field not kept: %s", raw)
		}
		seen = append(seen, cur.Password)
		old = cur
	}
	h.AssertNoSecretInLogs(seen...)
}

func TestAlternatingUsersCopiesGrants(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	master, mpw := dbtest.MyUser(t, "master")
	user, pw := dbtest.MyUser(t, "app")
	db := dbtest.Name("db_")
	dbtest.MyExec(t, "CREATE DATABASE "+db, "CREATE TABLE "+db+".t (v int)", "INSERT INTO "+db+".t VALUES (42)",
		"GRANT CREATE USER, SELECT ON *.* TO `"+master+"`@`%` WITH GRANT OPTION",
		"GRANT SELECT, INSERT ON "+db+".* TO `"+master+"`@`%` WITH GRANT OPTION",
		"GRANT SELECT ON "+db+".* TO `"+user+"`@`%` WITH GRANT OPTION",
		"GRANT INSERT ON "+db+".t TO `"+user+"`@`%`")
	t.Cleanup(func() { dbtest.MyExec(t, "DROP DATABASE IF EXISTS "+db) })
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	seen := []string{pw, mpw}
	prev := h.Current(arn)
	for i, want := range []string{user + "_clone", user, user + "_clone"} {
		if _, err := h.Rotate(arn); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		cur := h.Current(arn)
		if cur.Username != want {
			t.Fatalf("rotation %d: AWSCURRENT names %s, want %s", i+1, cur.Username, want)
		}
		mustLogIn(t, "new AWSCURRENT", cur)
		mustLogIn(t, "AWSPREVIOUS", prev)
		seen = append(seen, cur.Password)
		prev = cur
	}
	var grants []string
	rows, err := dbtest.MyAdmin(t).Query("SHOW GRANTS FOR ?@'%'", user+"_clone")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		rows.Scan(&g)
		grants = append(grants, g)
	}
	all := strings.Join(grants, "\n")
	if !strings.Contains(all, "GRANT SELECT ON `"+db+"`.* TO `"+user+"_clone`@`%` WITH GRANT OPTION") ||
		!strings.Contains(all, "GRANT INSERT ON `"+db+"`.`t` TO `"+user+"_clone`@`%`") {
		t.Fatalf("clone lacks the original's grants:\n%s", all)
	}
	h.AssertNoSecretInLogs(seen...)
}

func TestUserNameTooLong(t *testing.T) {
	h := dbtest.NewHarness(t, newTarget(t))
	master, mpw := dbtest.MyUser(t, "master")
	user, pw := dbtest.MyUser(t, strings.Repeat("u", 22)) // 30 + _clone = 36 > 32
	masterARN := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, master, mpw, nil)))
	arn := testbed.CreateSecret(t, h.Em, dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, map[string]any{"masterarn": masterARN})))
	if _, err := h.Rotate(arn); err == nil || !strings.Contains(err.Error(), "allows 32") {
		t.Fatalf("want a name-length error, got %v", err)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	cases := []struct {
		name    string
		current map[string]any
		want    string
		is      error
		noCA    bool // the function does not trust the test CA
	}{
		{name: "unreachable", current: map[string]any{"port": 1}, want: "cannot reach", is: dbsecret.ErrCannotReach},
		{name: "wrong password", current: map[string]any{"password": "not-the-password"}, want: "with AWSCURRENT or AWSPREVIOUS", is: dbsecret.ErrCannotLogIn},
		{name: "no host", current: map[string]any{"host": nil}, want: `"host" is missing`},
		{name: "ssl mistyped", current: map[string]any{"ssl": "maybe"}, want: `"ssl" must be true or false`},
		{name: "other engine", current: map[string]any{"engine": "postgres"}, want: `engine "postgres" is not served`},
		{name: "no CA", noCA: true, want: "certificate", is: dbsecret.ErrCannotReach},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user, pw := dbtest.MyUser(t, "app")
			tgt := newTarget(t)
			if c.noCA {
				cfg := testbed.AWSConfig(t)
				tgt = dbtarget.New(dbtarget.DefaultConfig(), mysql.Driver{}, secretsmanager.NewFromConfig(cfg), rds.NewFromConfig(cfg))
			}
			h := dbtest.NewHarness(t, tgt)
			value := dbtest.SecretJSON(t, dbtest.MySecret(t, user, pw, c.current))
			arn := testbed.CreateSecret(t, h.Em, value)
			token := h.Open(arn)
			var err error
			for _, step := range localrun.Steps[:2] {
				if err = h.Step(nil, step, arn, token); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error is not %v: %v", c.is, err)
			}
			if testbed.ValueAt(t, h.Em, arn, "AWSCURRENT") != value {
				t.Fatal("AWSCURRENT changed")
			}
			mustLogIn(t, "original password", &dbsecret.Secret{Username: user, Password: pw})
			h.AssertNoSecretInLogs(pw)
		})
	}
}
