package dbtest

// Attacker equipment. Nothing in this file stands in for a real component:
// these servers play someone who runs a host that a secret can point the
// function at, and who asks for a password in a form that reveals it.

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// AttackerTLS is the TLS configuration of an attacker who holds a
// certificate the function trusts, as anyone can get a public certificate
// for a domain of their own: the test CA's server certificate.
func AttackerTLS(t testing.TB) *tls.Config {
	t.Helper()
	dir := filepath.Dir(Settings(t)["DB_CA_FILE"])
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatalf("attacker certificate: %v", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

// PGAuthRequest is the authentication request a PGPasswordThief sends.
type PGAuthRequest int

// The weak forms a PostgreSQL server may ask a client for.
const (
	PGAskCleartext PGAuthRequest = 3 // AuthenticationCleartextPassword
	PGAskMD5       PGAuthRequest = 5 // AuthenticationMD5Password
)

func (r PGAuthRequest) String() string {
	if r == PGAskMD5 {
		return "MD5"
	}
	return "cleartext"
}

// PGPasswordThief is attacker equipment: a server on 127.0.0.1 that speaks
// just enough of the PostgreSQL protocol to answer a client's start-up
// (with TLS when it has a certificate), ask for the password in a weak
// form and record any password message the client sends back. Whoever
// runs such a server learns the password (cleartext) or a hash that logs
// in to any server where the password is stored as MD5.
type PGPasswordThief struct {
	Host string
	Port int

	ask  PGAuthRequest
	tls  *tls.Config
	mu   sync.Mutex
	got  [][]byte
	done chan struct{} // closed when the first connection was handled
	once sync.Once
}

// NewPGPasswordThief starts a thief that asks for ask; tlsCfg may be nil
// (it then refuses TLS, as a plaintext-only server does).
func NewPGPasswordThief(t testing.TB, ask PGAuthRequest, tlsCfg *tls.Config) *PGPasswordThief {
	t.Helper()
	l := ListenLoopback(t)
	p := &PGPasswordThief{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, ask: ask, tls: tlsCfg, done: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				p.serve(c)
				p.once.Do(func() { close(p.done) })
			}()
		}
	}()
	return p
}

// Passwords waits until the first client connection has been handled and
// returns every password message received so far.
func (p *PGPasswordThief) Passwords(t testing.TB) [][]byte {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the password thief saw no connection end (a hang guard, not a timing check)")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got
}

func (p *PGPasswordThief) serve(c net.Conn) {
	defer func() { c.Close() }()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	// Start-up packets: SSLRequest and GSSENCRequest come first, then the
	// StartupMessage.
	for {
		body, err := readStartup(c)
		if err != nil {
			return
		}
		if len(body) < 4 {
			return
		}
		switch binary.BigEndian.Uint32(body) {
		case 80877103: // SSLRequest
			if p.tls == nil {
				if _, err := c.Write([]byte{'N'}); err != nil {
					return
				}
				continue
			}
			if _, err := c.Write([]byte{'S'}); err != nil {
				return
			}
			tc := tls.Server(c, p.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			continue
		case 80877104: // GSSENCRequest
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
			continue
		}
		break // the StartupMessage
	}
	req := []byte{'R', 0, 0, 0, 8, 0, 0, 0, byte(p.ask)}
	if p.ask == PGAskMD5 {
		req = []byte{'R', 0, 0, 0, 12, 0, 0, 0, byte(p.ask), 's', 'a', 'l', 't'}
	}
	if _, err := c.Write(req); err != nil {
		return
	}
	typ, body, err := readMsg(c)
	if err != nil {
		return // the client hung up: nothing learned
	}
	if typ == 'p' {
		p.mu.Lock()
		p.got = append(p.got, body)
		p.mu.Unlock()
	}
	// Refuse the login, as a server would after harvesting the password.
	msg := "SFATAL\x00C28P01\x00Mpassword authentication failed\x00\x00"
	out := append([]byte{'E', 0, 0, 0, 0}, msg...)
	binary.BigEndian.PutUint32(out[1:], uint32(len(out)-1))
	_, _ = c.Write(out)
}

// MyPasswordThief is attacker equipment: a server on 127.0.0.1 that speaks
// just enough of the MySQL protocol (no TLS) to greet a client, switch the
// authentication to plugin (mysql_clear_password asks for the password
// itself) and record every byte the client sends after its greeting.
type MyPasswordThief struct {
	Host string
	Port int

	plugin string
	mu     sync.Mutex
	got    []byte
	conns  int
	done   chan struct{}
	once   sync.Once
}

// NewMyPasswordThief starts a thief that asks for plugin.
func NewMyPasswordThief(t testing.TB, plugin string) *MyPasswordThief {
	t.Helper()
	l := ListenLoopback(t)
	m := &MyPasswordThief{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, plugin: plugin, done: make(chan struct{})}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				m.serve(c)
				m.once.Do(func() { close(m.done) })
			}()
		}
	}()
	return m
}

// Received waits until the first client connection has been handled and
// returns what the client sent after answering the greeting.
func (m *MyPasswordThief) Received(t testing.TB) []byte {
	t.Helper()
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the password thief saw no connection end (a hang guard, not a timing check)")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.got
}

// Connections is the number of connections accepted so far.
func (m *MyPasswordThief) Connections() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns
}

func (m *MyPasswordThief) serve(c net.Conn) {
	defer c.Close()
	m.mu.Lock()
	m.conns++
	m.mu.Unlock()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	scramble := []byte("0123456789abcdefghij")
	// HandshakeV10: protocol 10, version, thread id, scramble part 1,
	// capabilities (LONG_PASSWORD|PROTOCOL_41|SECURE_CONNECTION|
	// PLUGIN_AUTH), charset, status, scramble length, scramble part 2,
	// plugin name.
	const caps = 0x1 | 0x200 | 0x8000 | 0x80000
	g := []byte{10}
	g = append(g, "8.0.36-attacker\x00"...)
	g = append(g, 1, 0, 0, 0)
	g = append(g, scramble[:8]...)
	g = append(g, 0)
	g = binary.LittleEndian.AppendUint16(g, caps&0xffff)
	g = append(g, 33, 2, 0)
	g = binary.LittleEndian.AppendUint16(g, caps>>16)
	g = append(g, 21)
	g = append(g, make([]byte, 10)...)
	g = append(g, scramble[8:]...)
	g = append(g, 0)
	g = append(g, "mysql_native_password\x00"...)
	if err := writeMyPacket(c, 0, g); err != nil {
		return
	}
	if _, err := readMyPacket(c); err != nil { // the client's greeting
		return
	}
	sw := append([]byte{0xfe}, m.plugin+"\x00"...)
	sw = append(sw, scramble...)
	sw = append(sw, 0)
	if err := writeMyPacket(c, 2, sw); err != nil {
		return
	}
	rest, _ := io.ReadAll(c)
	m.mu.Lock()
	m.got = append(m.got, rest...)
	m.mu.Unlock()
}

func writeMyPacket(w io.Writer, seq byte, payload []byte) error {
	h := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	_, err := w.Write(append(h, payload...))
	return err
}

func readMyPacket(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	body := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	_, err := io.ReadFull(r, body)
	return body, err
}
