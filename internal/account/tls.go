package account

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// BareFileName reports whether name is a file name without a directory:
// no separator, not "." or "..", no NUL, nothing that could leave the
// directory it is looked up in. Drivers refuse any other CA file name in
// Parse, before any file is touched, so that a secret can neither make an
// arbitrary file a trusted root nor learn whether one exists.
func BareFileName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\\\x00") && filepath.Base(name) == name
}

// TLSConfig returns a TLS configuration that verifies host (TLS 1.2+)
// against the system roots plus the PEM files given. An empty file name is
// skipped.
func TLSConfig(host string, caFiles ...string) (*tls.Config, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, f := range caFiles {
		if f == "" {
			continue
		}
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f)
		}
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}

// tlsFor returns the TLS of a login at loc: verified against the system
// roots, the function's CA bundle and the secret's CA file (looked up in
// the function's own directory). nil (plaintext) only when the secret asks
// for it and, for a family with a PlaintextServers variable, the
// configuration lists loc; for master credentials only in that case (the
// databases' master credentials always go over TLS).
func (t *Target) tlsFor(loc Location, master bool) (*tls.Config, error) {
	if loc.Plaintext {
		if !t.cfg.plaintextAllowed(loc) {
			return nil, t.plaintextRefused(loc)
		}
		if !master || t.cfg.names.PlaintextServers != "" {
			return nil, nil
		}
	}
	files := []string{t.cfg.CABundle}
	if loc.CABundle != "" {
		if !BareFileName(loc.CABundle) {
			return nil, fmt.Errorf(`secret field "ca_bundle" must be the bare name of a PEM file shipped with the function: a secret may not name any other file`)
		}
		f := filepath.Join(t.cfg.BundleDir, loc.CABundle)
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf(`secret field "ca_bundle": %q is not a file shipped with the function`, loc.CABundle)
		}
		files = append(files, f)
	}
	return TLSConfig(loc.Host, files...)
}

// plaintextRefused is the error of a secret that asks for plaintext at a
// server the configuration does not list.
func (t *Target) plaintextRefused(loc Location) error {
	return fmt.Errorf(`the secret turns TLS off (field "ssl": false) for %s, which %s does not list: refusing to send a password unencrypted`,
		loc.Address(), t.cfg.names.PlaintextServers)
}
