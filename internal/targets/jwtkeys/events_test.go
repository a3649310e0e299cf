package jwtkeys_test

import (
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// TestSampleEvents checks that events/jwtkeys holds one well-formed sample
// event per step, all of one rotation.
func TestSampleEvents(t *testing.T) {
	testbed.SampleEvents(t, "jwtkeys")
}
