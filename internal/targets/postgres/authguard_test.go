package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func msg(typ byte, body ...byte) []byte {
	out := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(out[1:], uint32(len(body)+4))
	return append(out, body...)
}

func authMsg(code uint32, rest ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, code)
	return msg('R', append(b, rest...)...)
}

// oneByteReader returns one byte per Read, so that every message boundary
// and every request code is split across reads.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func readAll(stream []byte, oneByte bool) ([]byte, error) {
	var r io.Reader = bytes.NewReader(stream)
	if oneByte {
		r = &oneByteReader{b: stream}
	}
	return io.ReadAll(&authGuard{r: r})
}

func TestAuthGuardPassesSCRAM(t *testing.T) {
	stream := bytes.Join([][]byte{
		msg('v', 0, 0, 0, 0, 0, 0, 0, 0), // NegotiateProtocolVersion
		authMsg(authSASL, []byte("SCRAM-SHA-256\x00\x00")...),
		authMsg(authSASLContinue, []byte("r=abc,s=c2FsdA==,i=4096")...),
		authMsg(authSASLFinal, []byte("v=xyz")...),
		authMsg(authOK),
		// After AuthenticationOk nothing is checked: an 'R'-looking
		// message is data.
		msg('S', []byte("R\x00\x00\x00\x08\x00\x00\x00\x03")...),
		msg('Z', 'I'),
	}, nil)
	for _, oneByte := range []bool{false, true} {
		got, err := readAll(stream, oneByte)
		if err != nil || !bytes.Equal(got, stream) {
			t.Fatalf("oneByte=%v: %v, %d of %d bytes", oneByte, err, len(got), len(stream))
		}
	}
}

func TestAuthGuardRefusesWeakRequests(t *testing.T) {
	for code, form := range map[uint32]string{
		authCleartext: "in cleartext", authMD5: "as an MD5 hash", authGSS: "through Kerberos/GSSAPI/SSPI",
		authSSPI: "through Kerberos/GSSAPI/SSPI", authKerberosV5: "through Kerberos/GSSAPI/SSPI", 99: "with authentication request 99",
	} {
		stream := append(msg('v', 0, 0, 0, 0, 0, 0, 0, 0), authMsg(code, 's', 'a', 'l', 't')...)
		for _, oneByte := range []bool{false, true} {
			got, err := readAll(stream, oneByte)
			var refused *RefusedAuthError
			if !errors.As(err, &refused) || refused.Form != form {
				t.Fatalf("code %d, oneByte=%v: want a refusal %q, got %v", code, oneByte, form, err)
			}
			// Not even the start of the request reaches pgx when it comes
			// in one read; byte by byte, the code's last byte never does.
			if bytes.Contains(got, authMsg(code)[:9]) {
				t.Fatalf("code %d: the whole request reached the reader", code)
			}
		}
	}
}
