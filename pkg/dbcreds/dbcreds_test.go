package dbcreds_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secrets-rotation/secrets-rotation/pkg/dbcreds"
)

func TestCredentialsPrintWithoutPassword(t *testing.T) {
	c := dbcreds.Credentials{Username: "app", Password: "hunter2-secret", Host: "db", Port: 5432, Stage: "AWSPENDING", VersionID: "v1"}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v", c, c, c)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("credentials print their password: %s", s)
		}
	}
}

func TestIsAuthFailure(t *testing.T) {
	wrap := func(code string) error {
		return fmt.Errorf("connect: %w", &pgconn.PgError{Code: code, Message: "x"})
	}
	for code, want := range map[string]bool{"28P01": true, "28000": true, "3D000": false, "57P03": false} {
		if got := dbcreds.IsAuthFailure(wrap(code)); got != want {
			t.Errorf("SQLSTATE %s: %v, want %v", code, got, want)
		}
	}
	if dbcreds.IsAuthFailure(errors.New("connection refused")) {
		t.Error("a network error counted as a refused login")
	}
}
