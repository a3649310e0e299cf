package dbtest

import (
	"bufio"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
)

// ListenLoopback listens on 127.0.0.1 at a free port below 32768 (the
// ephemeral range starts there), and closes the listener when the test ends.
func ListenLoopback(t testing.TB) net.Listener {
	t.Helper()
	for i := 0; i < 100; i++ {
		n, err := rand.Int(rand.Reader, big.NewInt(32767-20000))
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+n.Int64()))
		if err == nil {
			t.Cleanup(func() { l.Close() })
			return l
		}
	}
	t.Fatal("no free port on 127.0.0.1 between 20000 and 32767")
	return nil
}

// SilentServer accepts connections on 127.0.0.1 and never answers: a host
// that hangs the client, for the deadline tests. It returns its port.
func SilentServer(t testing.TB) int {
	t.Helper()
	l := ListenLoopback(t)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// AttackerPG is test equipment that plays an attacker's PostgreSQL server
// on 127.0.0.1: it records every connection attempt made to it (the TLS
// request, the startup's user and database, any cleartext password) and
// what it learns. For the users whose passwords it knows (the attacker wrote
// them into a secret) it completes SCRAM-SHA-256 and accepts the login, so
// that a function that "proves" a user's control at a server the secret
// chose is not stopped by a refused login (a wrong password is refused,
// as a real server would); every other user is asked for a
// cleartext password, which it records, and refused. It answers no query.
// It refuses TLS: a client that insists on TLS never sends it a startup.
type AttackerPG struct {
	Port int
	// Known are the users whose logins it accepts, with their passwords.
	Known map[string]string

	mu       sync.Mutex
	attempts []Attempt
}

// Attempt is one connection to an AttackerPG.
type Attempt struct {
	SSLRequested bool
	User         string // from the startup message; empty when none came
	Database     string
	Password     string // a cleartext password the client sent
	LoggedIn     bool
}

// NewAttackerPG starts an AttackerPG that knows the users of known.
func NewAttackerPG(t testing.TB, known map[string]string) *AttackerPG {
	t.Helper()
	l := ListenLoopback(t)
	a := &AttackerPG{Port: l.Addr().(*net.TCPAddr).Port, Known: known}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go a.serve(c)
		}
	}()
	return a
}

// Attempts returns the connections made so far.
func (a *AttackerPG) Attempts() []Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Attempt(nil), a.attempts...)
}

// Saw reports whether any connection carried user's name or the password.
func (a *AttackerPG) Saw(user, password string) bool {
	for _, at := range a.Attempts() {
		if at.User == user || (password != "" && at.Password == password) {
			return true
		}
	}
	return false
}

func (a *AttackerPG) serve(c net.Conn) {
	defer c.Close()
	// Each fact is recorded the moment it is learnt: a client may give up
	// (and a test look) before this connection ends.
	a.mu.Lock()
	i := len(a.attempts)
	a.attempts = append(a.attempts, Attempt{})
	a.mu.Unlock()
	var at Attempt
	record := func() {
		a.mu.Lock()
		a.attempts[i] = at
		a.mu.Unlock()
	}
	r := bufio.NewReader(c)
	var params map[string]string
	for params == nil {
		body, err := readStartup(r)
		if err != nil {
			return
		}
		switch code := binary.BigEndian.Uint32(body); code {
		case 80877103, 80877104: // SSLRequest, GSSENCRequest: refused
			at.SSLRequested = at.SSLRequested || code == 80877103
			record()
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
		case 196608: // protocol 3.0
			params = map[string]string{}
			kv := strings.Split(string(body[4:]), "\x00")
			for i := 0; i+1 < len(kv); i += 2 {
				params[kv[i]] = kv[i+1]
			}
		default:
			return
		}
	}
	at.User, at.Database = params["user"], params["database"]
	record()
	if pw, ok := a.Known[at.User]; ok {
		if err := scramServer(c, r, pw); err != nil {
			return
		}
		at.LoggedIn = true
		record()
		writeMsg(c, 'R', be32(0))     // AuthenticationOk
		writeMsg(c, 'Z', []byte{'I'}) // ReadyForQuery
		answerNothing(c, r)
		return
	}
	writeMsg(c, 'R', be32(3)) // AuthenticationCleartextPassword
	typ, body, err := readMsg(r)
	if err != nil || typ != 'p' {
		return
	}
	at.Password = strings.TrimSuffix(string(body), "\x00")
	record()
	writeError(c, "28P01", "password authentication failed for user \""+at.User+"\"")
}

// answerNothing fails every query until the client leaves.
func answerNothing(c net.Conn, r *bufio.Reader) {
	failed := false
	for {
		typ, _, err := readMsg(r)
		if err != nil || typ == 'X' {
			return
		}
		switch typ {
		case 'Q':
			writeError(c, "42501", "attacker's server answers no query")
			writeMsg(c, 'Z', []byte{'I'})
		case 'S':
			if !failed {
				writeError(c, "42501", "attacker's server answers no query")
			}
			writeMsg(c, 'Z', []byte{'I'})
			failed = false
		default:
			if !failed {
				writeError(c, "42501", "attacker's server answers no query")
				failed = true
			}
		}
	}
}

// scramServer runs the server side of SCRAM-SHA-256 (RFC 5802, 7677) for a
// user whose password it knows, so that the client's check of the server
// signature passes.
func scramServer(c net.Conn, r *bufio.Reader, password string) error {
	writeMsg(c, 'R', append(be32(10), []byte("SCRAM-SHA-256\x00\x00")...))
	typ, body, err := readMsg(r)
	if err != nil || typ != 'p' {
		return errors.New("no SASLInitialResponse")
	}
	i := strings.IndexByte(string(body), 0)
	if i < 0 || len(body) < i+5 {
		return errors.New("bad SASLInitialResponse")
	}
	clientFirst := string(body[i+5:])
	parts := strings.SplitN(clientFirst, ",", 3) // gs2 flag, authzid, bare
	if len(parts) != 3 {
		return errors.New("bad client-first-message")
	}
	bare := parts[2]
	var cnonce string
	for _, f := range strings.Split(bare, ",") {
		if v, ok := strings.CutPrefix(f, "r="); ok {
			cnonce = v
		}
	}
	salt := make([]byte, 16)
	snonce := make([]byte, 18)
	rand.Read(salt)
	rand.Read(snonce)
	serverFirst := "r=" + cnonce + base64.StdEncoding.EncodeToString(snonce) + ",s=" + base64.StdEncoding.EncodeToString(salt) + ",i=4096"
	writeMsg(c, 'R', append(be32(11), []byte(serverFirst)...))
	typ, body, err = readMsg(r)
	if err != nil || typ != 'p' {
		return errors.New("no SASLResponse")
	}
	clientFinal := string(body)
	j := strings.LastIndex(clientFinal, ",p=")
	if j < 0 {
		return errors.New("bad client-final-message")
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, 4096, 32)
	if err != nil {
		return err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	authMessage := bare + "," + serverFirst + "," + clientFinal[:j]
	// The client's proof must match the password, as on a real server: a
	// wrong password is refused.
	clientKey := mac(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	want := mac(stored[:], authMessage)
	for k := range want {
		want[k] ^= clientKey[k]
	}
	proof, err := base64.StdEncoding.DecodeString(clientFinal[j+3:])
	if err != nil || !hmac.Equal(proof, want) {
		writeError(c, "28P01", "password authentication failed")
		return errors.New("wrong password")
	}
	sig := mac(mac(salted, "Server Key"), authMessage)
	writeMsg(c, 'R', append(be32(12), []byte("v="+base64.StdEncoding.EncodeToString(sig))...))
	return nil
}

// readStartup reads a start-up packet (SSLRequest, StartupMessage, ...):
// a length, then the body.
func readStartup(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint32(n[:])
	if l < 8 || l > 10000 {
		return nil, errors.New("bad startup length")
	}
	body := make([]byte, l-4)
	_, err := io.ReadFull(r, body)
	return body, err
}

// readMsg reads a message: a type byte, a length, then the body.
func readMsg(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	typ := h[0]
	l := binary.BigEndian.Uint32(h[1:])
	if l < 4 || l > 1<<20 {
		return 0, nil, errors.New("bad message length")
	}
	body := make([]byte, l-4)
	_, err := io.ReadFull(r, body)
	return typ, body, err
}

func writeMsg(c net.Conn, typ byte, body []byte) {
	msg := append([]byte{typ}, be32(uint32(len(body)+4))...)
	c.Write(append(msg, body...))
}

func writeError(c net.Conn, code, text string) {
	writeMsg(c, 'E', []byte("SFATAL\x00VFATAL\x00C"+code+"\x00M"+text+"\x00\x00"))
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
