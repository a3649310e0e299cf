package mysql_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
)

// TestEndToEndUnderRIE builds functions/mysql, runs it under the Lambda
// Runtime Interface Emulator and rotates a secret twice through it.
func TestEndToEndUnderRIE(t *testing.T) {
	user, pw := dbtest.MyUser(t, "e2e")
	// No ca_bundle in the secret: the function's DB_CA_BUNDLE is trusted.
	secret := dbtest.MySecret(t, user, pw, map[string]any{"ca_bundle": nil})
	dbtest.RotateUnderRIE(t, "mysql", dbtest.Settings(t)["MYSQL_CA_FILE"], secret, login)
}
