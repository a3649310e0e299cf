package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
	"github.com/secrets-rotation/secrets-rotation/internal/dbtest"
)

// Relay is test equipment that records what a client sends: a loopback
// TCP relay to the server's plaintext listener that keeps a copy of every
// byte the clients write. Redis 7 itself hides ACL SETUSER from MONITOR
// and redacts its arguments in SLOWLOG, so the server's logs cannot show
// whether a password was sent in plaintext; the relay can.
type Relay struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	streams  []*bytes.Buffer
	wg       sync.WaitGroup
}

// Relay starts a relay to the plaintext listener; it stops with the test.
// It listens on 127.0.0.1 only, on a free port below 32768.
func (s *Server) Relay(t testing.TB) *Relay {
	t.Helper()
	ln := dbtest.ListenLoopback(t)
	r := &Relay{ln: ln, upstream: net.JoinHostPort(s.Host, strconv.Itoa(s.Port))}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

// Endpoint is where clients reach the relay (plaintext).
func (r *Relay) Endpoint() dbsecret.Endpoint {
	a := r.ln.Addr().(*net.TCPAddr)
	return dbsecret.Endpoint{Host: a.IP.String(), Port: a.Port, Timeout: 5 * time.Second}
}

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", r.upstream, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		buf := &bytes.Buffer{}
		r.mu.Lock()
		r.streams = append(r.streams, buf)
		r.mu.Unlock()
		r.wg.Add(2)
		go func() { // client to server, recorded
			defer r.wg.Done()
			_, _ = io.Copy(io.MultiWriter(up, &lockedWriter{mu: &r.mu, w: buf}), c)
			up.Close()
		}()
		go func() {
			defer r.wg.Done()
			_, _ = io.Copy(c, up)
			c.Close()
		}()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Commands returns every command the clients sent so far, each as its
// arguments, parsed from the RESP arrays of bulk strings clients send.
func (r *Relay) Commands() ([][]string, error) {
	r.mu.Lock()
	var raw [][]byte
	for _, b := range r.streams {
		raw = append(raw, bytes.Clone(b.Bytes()))
	}
	r.mu.Unlock()
	var cmds [][]string
	for _, b := range raw {
		rd := bufio.NewReader(bytes.NewReader(b))
		for {
			cmd, err := readCommand(rd)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
		}
	}
	return cmds, nil
}

func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		if err == io.EOF && line == "" {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("truncated command: %w", err)
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not a RESP array: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil {
		return nil, fmt.Errorf("array length %q: %w", line, err)
	}
	args := make([]string, 0, n)
	for range n {
		hdr, err := rd.ReadString('\n')
		if err != nil || !strings.HasPrefix(hdr, "$") {
			return nil, fmt.Errorf("want a bulk string, got %q (%v)", hdr, err)
		}
		l, err := strconv.Atoi(strings.TrimSpace(hdr[1:]))
		if err != nil {
			return nil, fmt.Errorf("bulk length %q: %w", hdr, err)
		}
		data := make([]byte, l+2)
		if _, err := io.ReadFull(rd, data); err != nil {
			return nil, fmt.Errorf("bulk string: %w", err)
		}
		args = append(args, string(data[:l]))
	}
	return args, nil
}
