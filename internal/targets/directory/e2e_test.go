package directory_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestEndToEndUnderRIE builds functions/directory, runs it under the Lambda
// Runtime Interface Emulator with each directory's configuration in its
// environment, and rotates a secret twice through it, in both strategies.
// No password may appear in the function's output.
func TestEndToEndUnderRIE(t *testing.T) {
	for _, s := range servers(t) {
		for _, st := range []strategy{single, alternating} {
			t.Run(s.name+"/"+string(st), func(t *testing.T) {
				f := s.newFixture(t, testbed.Emulator(t), st, nil)
				secret := map[string]any{"username": f.base, "password": f.password}
				if f.masterARN != "" {
					secret["masterarn"] = f.masterARN
				}
				dbtest.RotateUnderRIEWithEnv(t, "directory", s.environ(), secret, func(t testing.TB, sec *dbsecret.Secret) error {
					return s.login(t, sec.Username, sec.Password)
				})
			})
		}
	}
}
