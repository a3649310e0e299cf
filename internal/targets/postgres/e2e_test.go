package postgres_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
)

// TestEndToEndUnderRIE builds functions/postgres, runs it under the Lambda
// Runtime Interface Emulator and rotates a secret twice through it.
func TestEndToEndUnderRIE(t *testing.T) {
	user, pw := dbtest.PGUser(t, "e2e", "")
	// No ca_bundle in the secret: the function's DB_CA_BUNDLE is trusted.
	secret := dbtest.PGSecret(t, user, pw, map[string]any{"ca_bundle": nil})
	dbtest.RotateUnderRIE(t, "postgres", dbtest.Settings(t)["PG_CA_FILE"], secret, login)
}
