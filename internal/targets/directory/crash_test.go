package directory_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
)

// The shared crash tests of the account targets (internal/dbtest), on both
// directories and in each strategy. CrashAtEveryCall kills every step after
// each of its calls: the Secrets Manager calls and every login, read and
// password change the function sends to the directory or the KDC.

func eachSpec(t *testing.T, strategies []strategy, run func(*testing.T, dbtest.CrashSpec)) {
	for _, s := range servers(t) {
		for _, st := range strategies {
			t.Run(s.name+"/"+string(st), func(t *testing.T) { run(t, s.crashSpec(t, st)) })
		}
	}
}

func TestCrashes(t *testing.T)          { eachSpec(t, strategies, dbtest.Crashes) }
func TestCrashAtEveryCall(t *testing.T) { eachSpec(t, strategies, dbtest.CrashAtEveryCall) }
func TestAbandonedAfterSetSecret(t *testing.T) {
	eachSpec(t, strategies, dbtest.AbandonedAfterSetSecret)
}
func TestOtherVersionsChecked(t *testing.T) {
	eachSpec(t, []strategy{single, singleByMaster}, dbtest.OtherVersionsChecked)
}
