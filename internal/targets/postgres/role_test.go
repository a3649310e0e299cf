package postgres

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/redact"
)

func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{
		`"$user", public`:          {"$user", "public"},
		`a,b ,  c`:                 {"a", "b", "c"},
		`"My ""Schema""", x`:       {`My "Schema"`, "x"},
		`""`:                       {""},
		`  `:                       nil,
		`"/var/run/a b",/tmp`:      {"/var/run/a b", "/tmp"},
		`"with, comma" , "quoted"`: {"with, comma", "quoted"},
	} {
		got, err := splitList(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("splitList(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"open`, `a b`, `a,,b`, `a,`} {
		if _, err := splitList(bad); err == nil {
			t.Errorf("splitList(%q) accepted", bad)
		}
	}
}

func TestSettingValue(t *testing.T) {
	for _, c := range [][3]string{
		{"search_path", `"$user", public`, `'$user', 'public'`},
		{"Search_Path", `a`, `'a'`},
		{"work_mem", "8MB", `'8MB'`},
		{"myapp.note", `it's a \ test`, `E'it''s a \\ test'`},
		{"DateStyle", "ISO, MDY", `'ISO, MDY'`},
	} {
		if got, err := settingValue(c[0], c[1]); err != nil || got != c[2] {
			t.Errorf("settingValue(%s, %q) = %s, %v; want %s", c[0], c[1], got, err, c[2])
		}
	}
}

func TestRoleDiff(t *testing.T) {
	want := role{attrs: attrs{inherit: true, createDB: true, replication: true, connLimit: 7, validUntil: "2099-12-31 00:00:00+00"}}
	have := role{attrs: attrs{inherit: true, createRole: true, connLimit: -1}}
	got := want.diff(have)
	exp := []string{"NOCREATEROLE", "CREATEDB", "REPLICATION", "CONNECTION LIMIT 7", "VALID UNTIL '2099-12-31 00:00:00+00'"}
	if !slices.Equal(got, exp) {
		t.Fatalf("diff = %q, want %q", got, exp)
	}
	if d := want.diff(want); len(d) != 0 {
		t.Fatalf("a role differs from itself: %q", d)
	}
	// No VALID UNTIL on the original: the clone's is lifted.
	if d := (role{}).diff(role{attrs: attrs{validUntil: "2000-01-01 00:00:00+00"}}); !slices.Equal(d, []string{"VALID UNTIL 'infinity'"}) {
		t.Fatalf("diff = %q", d)
	}
}

// adminConn is a session of the test server's superuser through the driver.
func adminConn(t *testing.T) *conn {
	t.Helper()
	st := dbtest.Settings(t)
	port, _ := strconv.Atoi(st["PG_PORT"])
	tlsCfg, err := dbsecret.TLSConfig(true, st["PG_HOST"], st["PG_CA_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	ep := dbsecret.Endpoint{Host: st["PG_HOST"], Port: port, DBName: "postgres", TLS: tlsCfg, Timeout: 5e9}
	c, err := Driver{}.Connect(context.Background(), ep, st["PG_ADMIN_USER"], st["PG_ADMIN_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*conn)
}

// TestQuoteLiteralRoundTrip: the server reads each literal back as the
// string quoted, with either standard_conforming_strings.
func TestQuoteLiteralRoundTrip(t *testing.T) {
	c := adminConn(t)
	ctx := context.Background()
	for _, scs := range []string{"on", "off"} {
		if _, err := c.c.Exec(ctx, "SET standard_conforming_strings = "+scs); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"plain", "it's", `back\slash`, `'\'`, `\\'';--`, "new\nline", "ünï"} {
			var same bool
			if err := c.c.QueryRow(ctx, "SELECT "+quoteLiteral(s)+" = $1", s).Scan(&same); err != nil || !same {
				t.Fatalf("standard_conforming_strings=%s: %s does not read back as %q (%v)", scs, quoteLiteral(s), s, err)
			}
		}
	}
}

// TestStatementErrorsWithholdVerifier: a password statement the server
// cannot parse comes back with its SQLSTATE but without the message,
// which quotes the verifier.
func TestStatementErrorsWithholdVerifier(t *testing.T) {
	c := adminConn(t)
	ctx := context.Background()
	v, err := scramVerifier("pending-"+dbtest.Password(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lit, _ := quoteVerifier(v)
	secret := v[strings.IndexByte(v, ':')+1:]
	bad := "ALTER ROLE postgres PASSWORD " + lit + " " + lit
	_, raw := c.c.Exec(ctx, bad)
	if raw == nil || !redact.Quotes(raw.Error(), secret) {
		t.Fatalf("the server's own message was expected to quote the verifier, got %v", raw)
	}
	_, err = c.c.Exec(ctx, bad)
	err = withhold(err, secret)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42601" || redact.Quotes(err.Error(), secret) {
		t.Fatalf("want a syntax error without the verifier, got %v", err)
	}
}
