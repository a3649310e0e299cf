// Package rabbitmq rotates the passwords of RabbitMQ users (self-managed
// RabbitMQ, and Amazon MQ for RabbitMQ, which serves the same management
// API): it is the broker's driver beneath the account strategy layer
// (internal/account), which does single user, alternating users, the crash
// fallback and the trust rules. User changes go through the management HTTP
// API over verified HTTPS; credentials are proved over AMQP 0-9-1
// (github.com/rabbitmq/amqp091-go), the protocol the applications use.
//
// Passwords reach the broker only as "password_hash" values computed here
// (PasswordHash), never in plaintext, so no broker log or API response can
// show one.
//
// The secret's format is Secret's. The function is configured from its
// environment:
//
//	Variable                  Default             Meaning
//	PASSWORD_LENGTH           32                  length of generated passwords
//	EXCLUDE_CHARACTERS        /@"'\ :?#[]%`,=     characters never used (see
//	                                              DefaultExcludeCharacters)
//	EXCLUDE_* / INCLUDE_SPACE / REQUIRE_EACH_INCLUDED_TYPE   as for the generic function
//	RABBITMQ_CA_BUNDLE        (none)              PEM file trusted besides the system roots
//	RABBITMQ_CONNECT_TIMEOUT  5s                  bound of one login (AMQP or management
//	                                              API), never beyond the invocation's deadline
//	MASTER_ALLOWED_SERVERS    (none)              host:port list of management APIs where a
//	                                              master secret that names no "host" may be used
//	MASTER_ALLOWED_USERS      (none: any)         user names, or prefixes ending in "*", whose
//	                                              passwords the master user may set
package rabbitmq

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// Endpoint is where a broker listens.
type Endpoint struct {
	Host string
	// APIPort is the management API's HTTPS port (Amazon MQ: 443;
	// a self-managed broker usually 15671).
	APIPort int
	// AMQPPort is the AMQP 0-9-1 port (5671 with TLS).
	AMQPPort int
	// VHost is the virtual host the AMQP login opens ("/" when empty).
	VHost string
	// TLS verifies the broker's certificate. The management API is only
	// reached over HTTPS; AMQP goes plaintext when TLS is nil.
	TLS     *tls.Config
	Timeout time.Duration

	// WrapTransport, when set, wraps the management API client's
	// transport, and DialContext, when set, opens the TCP connection of
	// an AMQP login: the crash tests count both as external calls.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	DialContext   func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (e Endpoint) api() string  { return net.JoinHostPort(e.Host, strconv.Itoa(e.APIPort)) }
func (e Endpoint) amqp() string { return net.JoinHostPort(e.Host, strconv.Itoa(e.AMQPPort)) }

// ErrNoUser is wrapped by the error of an operation on a user the broker
// does not have.
var ErrNoUser = errors.New("no such RabbitMQ user")

// ErrNotAdministrator is wrapped by Connect's error when the credentials
// log in but lack the "administrator" tag, which every user change needs.
var ErrNotAdministrator = errors.New(`not tagged "administrator"`)

// Admin is a management API client logged in as an administrator.
type Admin struct {
	http     *http.Client
	base     string
	user     string
	password string
}

// Connect checks that user and password log in to the management API at ep
// (GET /api/whoami) with the administrator tag. Its login errors are
// *dbsecret.ConnError: ErrCannotLogIn for a 401, ErrCannotReach for a
// connection, TLS or HTTP failure before the broker judged the credentials.
// The API is reached over HTTPS only: the administrator's password travels
// in every request's Authorization header.
func Connect(ctx context.Context, ep Endpoint, user, password string) (*Admin, error) {
	if ep.TLS == nil {
		return nil, fmt.Errorf("management API at %s: refusing plain HTTP, which would carry the password of %s in clear", ep.api(), user)
	}
	var rt http.RoundTripper = &http.Transport{
		TLSClientConfig:     ep.TLS,
		Proxy:               nil, // the broker is reached directly, never through an environment proxy
		TLSHandshakeTimeout: ep.Timeout,
		MaxIdleConnsPerHost: 2,
	}
	if ep.WrapTransport != nil {
		rt = ep.WrapTransport(rt)
	}
	a := &Admin{
		http: &http.Client{
			Transport: rt,
			Timeout:   ep.Timeout,
			// A redirect would resend the Authorization header elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		base:     "https://" + ep.api(),
		user:     user,
		password: password,
	}
	var who struct {
		Name string          `json:"name"`
		Tags json.RawMessage `json:"tags"`
	}
	err := a.do(ctx, http.MethodGet, "/api/whoami", nil, &who)
	if err != nil {
		a.Close()
		kind := dbsecret.ErrCannotReach
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			kind = dbsecret.ErrCannotLogIn
		}
		return nil, &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.api(), Err: err}
	}
	tags, err := parseTags(who.Tags)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("whoami at %s: %w", ep.api(), err)
	}
	if !slices.Contains(tags, "administrator") {
		a.Close()
		return nil, fmt.Errorf("user %s at %s is %w: it cannot change users", user, ep.api(), ErrNotAdministrator)
	}
	return a, nil
}

// Close releases the client's idle connections.
func (a *Admin) Close() { a.http.CloseIdleConnections() }

// APIError is a management API answer other than 2xx.
type APIError struct {
	Method, Path string
	Status       int
	// Reason is the broker's "error" and "reason", without anything the
	// request carried as a password hash.
	Reason string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Reason)
}

// path joins escaped path segments: user names and virtual hosts ("/"
// becomes %2F) never change the path's shape.
func path(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends one request; body (if any) is encoded as JSON and out (if any)
// decoded from the answer. A 404 is an APIError like the others; callers
// that expect one check for it. secret, when not empty, is removed from any
// error text (the password hash a request carried).
func (a *Admin) do(ctx context.Context, method, p string, body, out any, secret ...string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, p, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+p, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, p, err)
	}
	req.SetBasicAuth(a.user, a.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, p, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, p, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Path: p, Status: resp.StatusCode, Reason: reason(data, secret)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, p, err)
		}
	}
	return nil
}

// reason extracts the broker's explanation from an error body.
func reason(data []byte, secrets []string) string {
	var e struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &e) == nil && (e.Error != "" || e.Reason != "") {
		msg = strings.TrimSpace(e.Error + ": " + e.Reason)
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

func isNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound
}

// parseTags reads "tags", a list since RabbitMQ 3.9 and a comma-separated
// string before.
func parseTags(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("tags: want a list or a string, got %s", raw)
	}
	var tags []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags, nil
}
