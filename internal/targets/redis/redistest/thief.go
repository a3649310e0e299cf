package redistest

import (
	"bufio"
	"crypto/tls"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
)

// Thief is test equipment that plays an attacker's server: it speaks
// enough of the Redis protocol for a client to log in with any password,
// and records every command it receives, AUTH's arguments included. It
// serves TLS with a certificate that the test CA signed for 127.0.0.1 (an
// attacker holds a valid certificate for a name of its own), or plaintext.
// It listens on 127.0.0.1, on a free port below 32768, until the test ends.
type Thief struct {
	Host string
	Port int

	mu       sync.Mutex
	conns    int
	commands [][]string
}

// Thief starts an attacker's server, over TLS unless plaintext.
func (s *Server) Thief(t testing.TB, plaintext bool) *Thief {
	t.Helper()
	ln := dbtest.ListenLoopback(t)
	if !plaintext {
		dir := filepath.Dir(s.CAFile)
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
		if err != nil {
			t.Fatalf("the thief's certificate: %v", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	a := ln.Addr().(*net.TCPAddr)
	th := &Thief{Host: a.IP.String(), Port: a.Port}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go th.serve(c)
		}
	}()
	return th
}

func (th *Thief) serve(c net.Conn) {
	defer c.Close()
	th.mu.Lock()
	th.conns++
	th.mu.Unlock()
	rd := bufio.NewReader(c)
	for {
		cmd, err := readCommand(rd)
		if err != nil || len(cmd) == 0 {
			return
		}
		th.mu.Lock()
		th.commands = append(th.commands, cmd)
		th.mu.Unlock()
		reply := "+OK\r\n"
		switch strings.ToUpper(cmd[0]) {
		case "PING":
			reply = "+PONG\r\n"
		case "HELLO":
			reply = "-ERR unknown command 'HELLO'\r\n"
		case "AUTH":
		default:
			reply = "-NOPERM this server plays an attacker\r\n"
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

// Connections is the number of connections the thief accepted.
func (th *Thief) Connections() int {
	th.mu.Lock()
	defer th.mu.Unlock()
	return th.conns
}

// Saw reports whether any command the thief received carried the value
// (a user name or a password) as one of its arguments, or within one.
func (th *Thief) Saw(value string) bool {
	th.mu.Lock()
	defer th.mu.Unlock()
	for _, cmd := range th.commands {
		if slices.ContainsFunc(cmd, func(arg string) bool { return strings.Contains(arg, value) }) {
			return true
		}
	}
	return false
}
