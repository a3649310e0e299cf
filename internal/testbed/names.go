package testbed

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"testing"
)

// UniqueName returns prefix followed by 8 random hex digits: a user or
// resource name that no other test (or run) uses.
func UniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// RandomPassword returns 32 random hex digits.
func RandomPassword() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// FreeLoopbackPort returns a port of 127.0.0.1 that nothing listens on, for
// tests of an unreachable server.
func FreeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
