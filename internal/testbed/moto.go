package testbed

import (
	"os"
	"testing"
)

// MotoURL returns the endpoint of a moto server of the test bed: the
// emulator itself with EMULATOR=moto, else the companion moto server that
// scripts/testbed.sh starts beside LocalStack for the APIs LocalStack's free
// edition lacks (its URL is the one AWS_ENDPOINT_URL_RDS names). Tests use
// it for what LocalStack 4.14 cannot do: CloudWatch Logs (not among the
// services the bed enables) and reading replicated secrets.
func MotoURL(t testing.TB) string {
	t.Helper()
	if err := loadEnv(t); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EMULATOR") == "moto" {
		return os.Getenv("AWS_ENDPOINT_URL")
	}
	u := os.Getenv("AWS_ENDPOINT_URL_RDS")
	if u == "" {
		t.Fatalf("AWS_ENDPOINT_URL_RDS (the companion moto server) is not set: %s", Hint)
	}
	return u
}
