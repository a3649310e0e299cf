package testbed

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// EnvFile returns the variables of .testbed/<name>, a file of `export K=V`
// lines that a per-server script writes (scripts/redis.sh writes
// redis.env). It fails the test, naming script, when the file is missing.
func EnvFile(t testing.TB, name, script string) map[string]string {
	t.Helper()
	file := filepath.Join(ModuleRoot(t), ".testbed", name)
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("read %s: %v: start the server first: %s up", file, err, script)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return m
}
