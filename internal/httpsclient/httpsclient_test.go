package httpsclient

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func serverCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVerifiedAndNoRedirect(t *testing.T) {
	var hits []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.URL.Path)
		if r.URL.Path == "/go" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	// Without the test CA the server is not trusted, and nothing is sent.
	if _, err := New(Transport(nil), time.Second).Get(srv.URL + "/x"); err == nil {
		t.Fatal("an untrusted server was accepted")
	}
	if len(hits) != 0 {
		t.Fatalf("requests reached an untrusted server: %v", hits)
	}

	roots, err := LoadRoots(serverCA(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	c := New(Transport(roots), time.Second)
	resp, err := c.Get(srv.URL + "/go")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !IsRedirect(resp.StatusCode) || strings.Join(hits, ",") != "/go" {
		t.Fatalf("status %d, requests %v: want the 302 itself and no request to /elsewhere", resp.StatusCode, hits)
	}
}

func TestLoadRootsErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadRoots(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing file was accepted")
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRoots(notPEM); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("error %v, want one saying the file holds no certificate", err)
	}
}

func TestDisplayAndCause(t *testing.T) {
	u, _ := url.Parse("https://user:pw@api.example.com/v1/keys?token=abc#frag")
	if got := Display(u); got != "https://api.example.com/v1/keys" {
		t.Errorf("Display = %q", got)
	}
	_, err := New(Transport(nil), time.Second).Get("https://127.0.0.1:1/x?token=abc")
	if err == nil || strings.Contains(Cause(err).Error(), "token=abc") {
		t.Errorf("Cause(%v) keeps the query", err)
	}
}
