// Package keyprovider is test equipment that plays a third-party provider
// of API keys, the shape of the common SaaS key APIs, for the tests and the
// benchmark of the provider rotation function. It plays the provider, not
// AWS: every AWS call of those tests still goes to the emulator.
//
// It serves HTTPS on 127.0.0.1 (a port below 32768) with a certificate of
// its own, written to a PEM file that the function is given as its CA file:
//
//	POST   /v1/keys            admin: {"name"} -> 201 {"id","key","name","created"};
//	                           Idempotency-Key honoured (the first answer is replayed);
//	                           409 {"error":{"type":"key_limit",...}} at MaxKeys keys
//	GET    /v1/keys            admin: {"data":[{"id","name","created"}]} (never the keys)
//	DELETE /v1/keys/{id}       admin: 204, or 404 when there is no such key
//	PUT    /v1/keys/{id}/scopes admin: {"scopes":[...]} -> 204 (an activation step), or 404
//	GET    /v1/me              Authorization: Bearer <key> -> 200 {"id","name"}, or 401
//	                           with a body that echoes the key it refused (as careless
//	                           providers do, for the redaction tests)
//
// and accounts whose secret the client chooses (as a message broker's users):
//
//	PUT    /v1/accounts/{name} admin: {"secret"} -> 201 created, 204 replaced
//	GET    /v1/accounts        admin: [{"name"}]
//	DELETE /v1/accounts/{name} admin: 204 or 404
//	GET    /v1/whoami          basic auth name:secret -> 200 {"name"}, or 401
//
// Admin requests carry Authorization: Bearer <AdminToken>. Faults can be
// injected: 429 with Retry-After, a failing answer, a create answer without
// the key or id, a slow answer.
package keyprovider

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
)

// Options configure a Provider.
type Options struct {
	// MaxKeys is the most keys, and separately accounts, the account may
	// have. Default 10.
	MaxKeys int
	// NoIdempotency makes the provider ignore Idempotency-Key, as many do.
	NoIdempotency bool
	// Dir receives the CA file. Required.
	Dir string
}

// Provider is a running fake provider.
type Provider struct {
	// URL is the https origin, https://127.0.0.1:<port>.
	URL string
	// CAFile holds the server's certificate (PEM).
	CAFile string
	// AdminToken is the admin credential.
	AdminToken string

	opts Options
	srv  *httptest.Server

	mu         sync.Mutex
	keys       map[string]*cred // by id
	accounts   map[string]*cred // by name
	idem       map[string]answer
	issued     []string
	requests   []Request
	limited    int
	retryAfter string
	faults     []fault
	omit       string
	delay      time.Duration
}

type cred struct {
	id, name, secret string
	created          time.Time
	scopes           []string
}

type answer struct {
	status int
	body   []byte
}

type fault struct {
	method, path string
	status       int
	body         string
}

// Request is one request the provider received.
type Request struct {
	Method, Path   string
	IdempotencyKey string
	Status         int
}

// Start starts a provider.
func Start(opts Options) (*Provider, error) {
	if opts.MaxKeys == 0 {
		opts.MaxKeys = 10
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("keyprovider: Options.Dir is required")
	}
	p := &Provider{
		opts:       opts,
		AdminToken: "adm_" + randomHex(24),
		keys:       map[string]*cred{},
		accounts:   map[string]*cred{},
		idem:       map[string]answer{},
	}
	l, err := localrun.ListenLoopback()
	if err != nil {
		return nil, err
	}
	p.srv = &httptest.Server{
		Listener: l,
		// Handshakes that a client refuses on purpose would spam the output.
		Config: &http.Server{Handler: http.HandlerFunc(p.serve), ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second},
	}
	p.srv.StartTLS()
	p.URL = p.srv.URL
	p.CAFile = filepath.Join(opts.Dir, "keyprovider-ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(p.CAFile, pemBytes, 0o600); err != nil {
		p.srv.Close()
		return nil, err
	}
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() { p.srv.Close() }

// Key is a live key or account.
type Key struct {
	Kind   string // "key" or "account"
	ID     string // the account's name for an account
	Name   string
	Scopes []string // set by PUT /v1/keys/{id}/scopes
}

// Keys returns the live keys and accounts, sorted.
func (p *Provider) Keys() []Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Key
	for _, k := range p.keys {
		out = append(out, Key{Kind: "key", ID: k.id, Name: k.name, Scopes: append([]string(nil), k.scopes...)})
	}
	for _, a := range p.accounts {
		out = append(out, Key{Kind: "account", ID: a.id, Name: a.name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind+out[i].ID < out[j].Kind+out[j].ID })
	return out
}

// Issued returns every key and account secret the provider ever issued or
// was given, revoked ones included, for scans of logs and errors.
func (p *Provider) Issued() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// Requests returns the requests received so far.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Valid reports whether secret is a live key's or account's secret.
func (p *Provider) Valid(secret string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.keys {
		if k.secret == secret {
			return true
		}
	}
	for _, a := range p.accounts {
		if a.secret == secret {
			return true
		}
	}
	return false
}

// AddKey makes a key outside any rotation, as a person would in the
// provider's console, and returns its id and secret.
func (p *Provider) AddKey(name string) (id, secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.newKey(name)
	return k.id, k.secret
}

// RateLimit answers the next n requests with 429 and this Retry-After
// header ("" for none).
func (p *Provider) RateLimit(n int, retryAfter string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limited, p.retryAfter = n, retryAfter
}

// FailNext answers the next request of method to a path starting with
// prefix with status and body, without acting on it.
func (p *Provider) FailNext(method, prefix string, status int, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, fault{method, prefix, status, body})
}

// OmitFromCreate makes POST /v1/keys leave "key" or "id" out of its answer
// (the key is made all the same); "" ends it.
func (p *Provider) OmitFromCreate(field string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.omit = field
}

// Delay holds every answer for d.
func (p *Provider) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newKey makes a key; p.mu is held.
func (p *Provider) newKey(name string) *cred {
	k := &cred{id: "key_" + randomHex(8), name: name, secret: "sk_test_" + randomHex(24), created: time.Now().UTC()}
	p.keys[k.id] = k
	p.issued = append(p.issued, k.secret)
	return k
}

func (p *Provider) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	delay := p.delay
	p.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec := Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	status, body, hdr := p.handle(r)
	rec.Status = status
	p.requests = append(p.requests, rec)
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	if body != nil {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func errBody(typ, msg string) []byte {
	return jsonBody(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}

// handle answers one request; p.mu is held.
func (p *Provider) handle(r *http.Request) (int, []byte, map[string]string) {
	if p.limited > 0 {
		p.limited--
		h := map[string]string{}
		if p.retryAfter != "" {
			h["Retry-After"] = p.retryAfter
		}
		return http.StatusTooManyRequests, errBody("rate_limited", "too many requests"), h
	}
	for i, f := range p.faults {
		if f.method == r.Method && strings.HasPrefix(r.URL.Path, f.path) {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			return f.status, []byte(f.body), nil
		}
	}
	path := r.URL.Path
	switch {
	case path == "/v1/me" && r.Method == http.MethodGet:
		presented := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		for _, k := range p.keys {
			if k.secret == presented {
				return http.StatusOK, jsonBody(map[string]string{"id": k.id, "name": k.name}), nil
			}
		}
		return http.StatusUnauthorized, errBody("invalid_key", "invalid api key: "+presented), nil
	case path == "/v1/whoami" && r.Method == http.MethodGet:
		name, secret, ok := r.BasicAuth()
		if a := p.accounts[name]; ok && a != nil && a.secret == secret {
			return http.StatusOK, jsonBody(map[string]string{"name": a.name}), nil
		}
		return http.StatusUnauthorized, errBody("invalid_credentials", "login refused for "+name), nil
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+p.AdminToken {
		return http.StatusUnauthorized, errBody("unauthorized", "bad admin credential: "+got), nil
	}
	switch {
	case path == "/v1/keys" && r.Method == http.MethodPost:
		return p.createKey(r)
	case path == "/v1/keys" && r.Method == http.MethodGet:
		items := []map[string]string{}
		for _, k := range p.keys {
			items = append(items, map[string]string{"id": k.id, "name": k.name, "created": k.created.Format(time.RFC3339)})
		}
		sort.Slice(items, func(i, j int) bool { return items[i]["id"] < items[j]["id"] })
		return http.StatusOK, jsonBody(map[string]any{"data": items}), nil
	case strings.HasPrefix(path, "/v1/keys/") && strings.HasSuffix(path, "/scopes") && r.Method == http.MethodPut:
		k := p.keys[strings.TrimSuffix(strings.TrimPrefix(path, "/v1/keys/"), "/scopes")]
		var in struct{ Scopes []string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
			return http.StatusBadRequest, errBody("bad_request", "want {\"scopes\"}"), nil
		}
		if k == nil {
			return http.StatusNotFound, errBody("not_found", "no such key"), nil
		}
		k.scopes = in.Scopes
		return http.StatusNoContent, nil, nil
	case strings.HasPrefix(path, "/v1/keys/") && r.Method == http.MethodDelete:
		id := strings.TrimPrefix(path, "/v1/keys/")
		if _, ok := p.keys[id]; !ok {
			return http.StatusNotFound, errBody("not_found", "no key "+id), nil
		}
		delete(p.keys, id)
		return http.StatusNoContent, nil, nil
	case path == "/v1/accounts" && r.Method == http.MethodGet:
		items := []map[string]string{}
		for _, a := range p.accounts {
			items = append(items, map[string]string{"name": a.name})
		}
		sort.Slice(items, func(i, j int) bool { return items[i]["name"] < items[j]["name"] })
		return http.StatusOK, jsonBody(items), nil
	case strings.HasPrefix(path, "/v1/accounts/") && r.Method == http.MethodPut:
		name := strings.TrimPrefix(path, "/v1/accounts/")
		var in struct{ Secret string }
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.Secret == "" || name == "" {
			return http.StatusBadRequest, errBody("bad_request", "want {\"secret\"}"), nil
		}
		p.issued = append(p.issued, in.Secret)
		if a, ok := p.accounts[name]; ok {
			a.secret = in.Secret
			return http.StatusNoContent, nil, nil
		}
		if len(p.accounts) >= p.opts.MaxKeys {
			return http.StatusConflict, errBody("account_limit", "at most "+strconv.Itoa(p.opts.MaxKeys)+" accounts"), nil
		}
		p.accounts[name] = &cred{id: name, name: name, secret: in.Secret, created: time.Now().UTC()}
		return http.StatusCreated, nil, nil
	case strings.HasPrefix(path, "/v1/accounts/") && r.Method == http.MethodDelete:
		name := strings.TrimPrefix(path, "/v1/accounts/")
		if _, ok := p.accounts[name]; !ok {
			return http.StatusNotFound, errBody("not_found", "no account "+name), nil
		}
		delete(p.accounts, name)
		return http.StatusNoContent, nil, nil
	}
	return http.StatusNotFound, errBody("not_found", r.Method+" "+path), nil
}

func (p *Provider) createKey(r *http.Request) (int, []byte, map[string]string) {
	idem := r.Header.Get("Idempotency-Key")
	if idem != "" && !p.opts.NoIdempotency {
		if a, ok := p.idem[idem]; ok {
			return a.status, a.body, map[string]string{"Idempotent-Replayed": "true"}
		}
	}
	var in struct{ Name string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil || in.Name == "" {
		return http.StatusBadRequest, errBody("bad_request", "want {\"name\"}"), nil
	}
	if len(p.keys) >= p.opts.MaxKeys {
		return http.StatusConflict, errBody("key_limit", "the account has reached its limit of "+strconv.Itoa(p.opts.MaxKeys)+" keys"), nil
	}
	k := p.newKey(in.Name)
	out := map[string]string{"id": k.id, "key": k.secret, "name": k.name, "created": k.created.Format(time.RFC3339)}
	if p.omit != "" {
		delete(out, p.omit)
	}
	a := answer{status: http.StatusCreated, body: jsonBody(out)}
	if idem != "" && !p.opts.NoIdempotency {
		p.idem[idem] = a
	}
	return a.status, a.body, nil
}
