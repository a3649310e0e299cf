// Package provider is the rotation target for credentials that a third-party
// provider issues through its HTTP API: API keys of a SaaS, users of a
// message broker's management API. What the provider's API looks like is
// not code but configuration: a JSON document that describes five requests,
//
//	create    makes the new key (the provider returns it, or the function
//	          generates it and sends it)
//	activate  optional: makes the new key usable (setSecret)
//	test      a request made with the new key that must succeed (testSecret)
//	revoke    deletes or disables a key by its id (finishSecret, after the grace period)
//	list      optional: lists the keys, so that the function finds the ones it made
//
// with their method, path, headers, body and authentication, and where the
// key and its id are in the answers (JSON pointers). docs/provider.md
// describes the format; functions/provider/configs holds examples.
//
// The function's environment:
//
//	PROVIDER_CONFIG       the JSON document itself, or
//	PROVIDER_CONFIG_FILE  a file holding it, shipped with the function (exactly one of the two)
//	PROVIDER_BASE_URL     replaces the document's base_url (the provider's https origin and path prefix)
//	PROVIDER_CA_FILE      replaces the document's ca_file (PEM roots added to the system's)
//	ADMIN_SECRET_ID       the secret holding the admin credential (or the document's admin.secret_id)
//	GRACE_PERIOD          unset: the replaced key stays valid until the next rotation;
//	                      0: it is revoked as soon as AWSCURRENT has moved
//
// The host every request goes to comes from this configuration only; the
// secret's content supplies its own key and key id and nothing else (see
// vars.go for the template variables).
package provider

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
	"github.com/secrets-rotation/secrets-rotation/internal/password"
)

// document is the configuration as written.
type document struct {
	Provider  string            `json:"provider"`
	BaseURL   string            `json:"base_url"`
	CAFile    string            `json:"ca_file"`
	Timeout   string            `json:"timeout"`
	Constants map[string]string `json:"constants"`
	Admin     *struct {
		SecretID string   `json:"secret_id"`
		Fields   []string `json:"fields"`
	} `json:"admin"`
	Key struct {
		Name     string `json:"name"`
		ID       string `json:"id"`
		Generate *struct {
			Bytes    int    `json:"bytes"`
			Encoding string `json:"encoding"`
			Prefix   string `json:"prefix"`
		} `json:"generate"`
	} `json:"key"`
	Secret struct {
		Key      string `json:"key"`
		ID       string `json:"id"`
		Issued   string `json:"issued"`
		Replaced string `json:"replaced"`
	} `json:"secret"`
	Create   *requestDoc `json:"create"`
	Activate *requestDoc `json:"activate"`
	Test     *requestDoc `json:"test"`
	Revoke   *requestDoc `json:"revoke"`
	List     *requestDoc `json:"list"`
}

type requestDoc struct {
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Auth      string            `json:"auth"`
	Headers   map[string]string `json:"headers"`
	BasicAuth *struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"basic_auth"`
	JSON        json.RawMessage   `json:"json"`
	Form        map[string]string `json:"form"`
	Expect      []int             `json:"expect"`
	Gone        []int             `json:"gone"`
	LimitStatus []int             `json:"limit_status"`
	RetryFor    string            `json:"retry_for"`
	Response    map[string]string `json:"response"`
	Sample      json.RawMessage   `json:"sample"`
}

// Config is the validated configuration of a Target. Build it with
// ConfigFromEnv.
type Config struct {
	// Source names where the document came from, for errors.
	Source   string
	Provider string
	// Base is the provider's origin and path prefix: every request goes to
	// Base.Host.
	Base      *url.URL
	CAFile    string
	Timeout   time.Duration
	Constants map[string]string
	// AdminSecretID names the secret that holds the admin credential;
	// AdminFields are the fields of it that requests may use.
	AdminSecretID string
	AdminFields   []string
	// RevokeAtOnce is GRACE_PERIOD=0: the replaced key is revoked as soon
	// as AWSCURRENT has moved, instead of at the next rotation.
	RevokeAtOnce bool

	keyName  *template // marks the keys this function makes, per secret and rotation
	keyID    *template // the key's id, when the function chooses it
	generate *keyGen
	fields   fieldNames

	create, activate, test, revoke, list *request
	roots                                *x509.CertPool
}

type keyGen struct {
	bytes    int
	encoding string
	prefix   string
}

// fieldNames are the secret's fields the function writes.
type fieldNames struct {
	key, id, issued, replaced string
}

// request is one request of the configuration, parsed and checked.
type request struct {
	role   string
	method string
	auth   string
	path   template // before "?"
	query  template // after "?", if any
	// pathSrc is the path as configured, for errors: it never holds a
	// credential (checked), and shows {{key_id}} rather than a value.
	pathSrc  string
	headers  []namedTemplate
	user     *template
	pass     *template
	jsonBody any // decoded document whose strings are templates
	form     []namedTemplate
	expect   []int
	gone     []int
	limit    []int
	retryFor time.Duration
	ptr      map[string]pointer
}

type namedTemplate struct {
	name string
	t    template
}

// Defaults and limits.
const (
	defaultTimeout = 10 * time.Second
	maxTimeout     = 2 * time.Minute
	maxRetryFor    = 10 * time.Minute
)

// ConfigFromEnv reads and validates the configuration through getenv.
// Every error names the variable and, inside the document, the field.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	inline := strings.TrimSpace(getenv("PROVIDER_CONFIG"))
	file := strings.TrimSpace(getenv("PROVIDER_CONFIG_FILE"))
	var raw []byte
	var c Config
	dir := ""
	switch {
	case inline != "" && file != "":
		return Config{}, errors.New("PROVIDER_CONFIG and PROVIDER_CONFIG_FILE are both set: choose one")
	case inline != "":
		raw, c.Source = []byte(inline), "PROVIDER_CONFIG"
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("PROVIDER_CONFIG_FILE: %w", err)
		}
		raw, c.Source, dir = b, "PROVIDER_CONFIG_FILE="+file, filepath.Dir(file)
	default:
		return Config{}, errors.New("PROVIDER_CONFIG_FILE (a JSON file shipped with the function) or PROVIDER_CONFIG (the JSON document) must be set")
	}
	var doc document
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return Config{}, fmt.Errorf("%s: not a valid configuration document: %w", c.Source, err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("%s: more than one JSON value", c.Source)
	}
	if err := c.fromDocument(doc, getenv, dir); err != nil {
		return Config{}, fmt.Errorf("%s: %w", c.Source, err)
	}
	grace := strings.TrimSpace(getenv("GRACE_PERIOD"))
	switch grace {
	case "":
	case "0", "0s", "0d", "0h":
		c.RevokeAtOnce = true
	default:
		// The function runs only when Secrets Manager invokes it, so the
		// replaced key can be revoked at once or at the next rotation, and
		// at no moment between: a value that promised otherwise would lie.
		return Config{}, fmt.Errorf("GRACE_PERIOD=%q: leave it unset (the replaced key stays valid until the next rotation) or set 0 (it is revoked as soon as AWSCURRENT has moved); for a shorter overlap, rotate more often", grace)
	}
	return c, nil
}

func (c *Config) fromDocument(doc document, getenv func(string) string, dir string) error {
	c.Provider = strings.TrimSpace(doc.Provider)
	if c.Provider == "" {
		c.Provider = "provider"
	}
	base := doc.BaseURL
	field := "base_url"
	if v := strings.TrimSpace(getenv("PROVIDER_BASE_URL")); v != "" {
		base, field = v, "PROVIDER_BASE_URL"
	}
	u, err := parseBase(base)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	c.Base = u

	c.CAFile = doc.CAFile
	if v := strings.TrimSpace(getenv("PROVIDER_CA_FILE")); v != "" {
		c.CAFile = v
	} else if c.CAFile != "" && !filepath.IsAbs(c.CAFile) && dir != "" {
		// Relative to the document, which ships with the function.
		c.CAFile = filepath.Join(dir, c.CAFile)
	}
	if c.CAFile != "" {
		if c.roots, err = httpsclient.LoadRoots(c.CAFile); err != nil {
			return fmt.Errorf("ca_file: %w", err)
		}
	}

	c.Timeout = defaultTimeout
	if doc.Timeout != "" {
		d, err := time.ParseDuration(doc.Timeout)
		if err != nil || d <= 0 || d > maxTimeout {
			return fmt.Errorf("timeout: %q is not a Go duration between 0 and %s such as 10s", doc.Timeout, maxTimeout)
		}
		c.Timeout = d
	}

	c.Constants = map[string]string{}
	for k, v := range doc.Constants {
		if !varName.MatchString(k) || strings.Contains(k, ".") {
			return fmt.Errorf("constants: %q is not a valid name (lower case letters, digits and _)", k)
		}
		c.Constants[k] = v
	}

	if doc.Admin != nil {
		c.AdminSecretID = strings.TrimSpace(doc.Admin.SecretID)
		for _, f := range doc.Admin.Fields {
			if !varName.MatchString(f) || strings.Contains(f, ".") {
				return fmt.Errorf("admin.fields: %q is not a valid field name (lower case letters, digits and _)", f)
			}
			c.AdminFields = append(c.AdminFields, f)
		}
	}
	if v := strings.TrimSpace(getenv("ADMIN_SECRET_ID")); v != "" {
		if c.AdminSecretID != "" && c.AdminSecretID != v {
			return fmt.Errorf("admin.secret_id %q and ADMIN_SECRET_ID %q name different secrets", c.AdminSecretID, v)
		}
		c.AdminSecretID = v
	}

	if err := c.keyFromDocument(doc); err != nil {
		return err
	}
	c.fields = fieldNames{
		key:      or(doc.Secret.Key, "apiKey"),
		id:       or(doc.Secret.ID, "keyId"),
		issued:   or(doc.Secret.Issued, "issuedAt"),
		replaced: or(doc.Secret.Replaced, "replacedKeyId"),
	}
	names := []string{c.fields.key, c.fields.id, c.fields.issued, c.fields.replaced}
	for i, n := range names {
		if slices.Contains(names[i+1:], n) {
			return fmt.Errorf("secret: the field %q is named twice", n)
		}
	}

	for _, r := range []struct {
		role     string
		doc      *requestDoc
		required bool
		dst      **request
	}{
		{roleCreate, doc.Create, true, &c.create},
		{roleActivate, doc.Activate, false, &c.activate},
		{roleTest, doc.Test, true, &c.test},
		{roleRevoke, doc.Revoke, true, &c.revoke},
		{roleList, doc.List, false, &c.list},
	} {
		if r.doc == nil {
			if r.required {
				return fmt.Errorf("%s: missing: the %s request is required", r.role, r.role)
			}
			continue
		}
		req, err := c.parseRequest(r.role, r.doc)
		if err != nil {
			return fmt.Errorf("%s.%w", r.role, err)
		}
		*r.dst = req
	}
	return c.checkWhole()
}

func or(s, def string) string {
	if s = strings.TrimSpace(s); s != "" {
		return s
	}
	return def
}

func parseBase(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("missing: the provider's https:// origin, e.g. https://api.example.com/v1")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("%q must be an absolute https:// URL: keys are never sent in clear text", httpsclient.Display(u))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q must not contain user information: credentials belong in the admin secret", httpsclient.Display(u))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must not have a query or fragment: put them in each request's path", httpsclient.Display(u))
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func (c *Config) keyFromDocument(doc document) error {
	if doc.Key.Name != "" {
		t, err := keyTemplate(doc.Key.Name, c.Constants)
		if err != nil {
			return fmt.Errorf("key.name: %w", err)
		}
		c.keyName = &t
	}
	if doc.Key.ID != "" {
		t, err := keyTemplate(doc.Key.ID, c.Constants)
		if err != nil {
			return fmt.Errorf("key.id: %w", err)
		}
		c.keyID = &t
	}
	if g := doc.Key.Generate; g != nil {
		kg := keyGen{bytes: g.Bytes, encoding: or(g.Encoding, password.EncodingBase64URL), prefix: g.Prefix}
		if kg.bytes == 0 {
			kg.bytes = 32
		}
		if kg.bytes < 16 || kg.bytes > 1024 {
			return fmt.Errorf("key.generate.bytes: must be between 16 and 1024, got %d", kg.bytes)
		}
		if _, err := password.EncodeKey(nil, kg.encoding); err != nil {
			return fmt.Errorf("key.generate.encoding: %w", err)
		}
		if len(kg.prefix) > 64 || strings.ContainsFunc(kg.prefix, func(r rune) bool { return r <= ' ' || r > '~' }) {
			return fmt.Errorf("key.generate.prefix: %q must be at most 64 printable ASCII characters without spaces", kg.prefix)
		}
		c.generate = &kg
	}
	if c.keyName == nil && c.keyID != nil {
		// A key whose id the function chooses is known by that id.
		c.keyName = c.keyID
	}
	return nil
}

// keyTemplate parses key.name or key.id. Both must be the same whenever
// they are rendered for the same secret and rotation, and must say which:
// they use {{token}} once, and {{secret_hash}} or {{secret_name}}, so that
// the keys of one secret can be told from every other secret's and each
// key from its rotation's.
func keyTemplate(s string, constants map[string]string) (template, error) {
	t, err := parseTemplate(s)
	if err != nil {
		return template{}, err
	}
	tokens := 0
	for _, seg := range t.segs {
		switch {
		case seg.name == "":
		case seg.filter != "":
			return template{}, fmt.Errorf("%q: no filter may be applied here", s)
		case seg.name == "token":
			tokens++
		case seg.name == "secret_hash", seg.name == "secret_name":
		case strings.HasPrefix(seg.name, "config.") && constants[strings.TrimPrefix(seg.name, "config.")] != "":
		default:
			return template{}, fmt.Errorf("%q: unknown template variable {{%s}} here (allowed: {{token}} {{secret_hash}} {{secret_name}} {{config.<constant>}})", s, seg.name)
		}
	}
	if tokens != 1 || !containsAny(t.names(), "secret_hash", "secret_name") {
		return template{}, fmt.Errorf("%q must contain {{token}} once and {{secret_hash}} or {{secret_name}}: that is how the function recognises the keys it made, per secret and rotation", s)
	}
	return t, nil
}

func (c *Config) parseRequest(role string, d *requestDoc) (*request, error) {
	r := &request{role: role, ptr: map[string]pointer{}}
	r.method = strings.ToUpper(strings.TrimSpace(d.Method))
	switch r.method {
	case "GET", "POST", "PUT", "PATCH", "DELETE":
	case "":
		return nil, errors.New("method: missing")
	default:
		return nil, fmt.Errorf("method: %q is not one of GET, POST, PUT, PATCH, DELETE", d.Method)
	}
	r.auth = strings.TrimSpace(d.Auth)
	auths := authsOf[role]
	if r.auth == "" {
		r.auth = auths[0]
	}
	if !slices.Contains(auths, r.auth) {
		return nil, fmt.Errorf("auth: %q is not allowed for %s (allowed: %s)", r.auth, role, strings.Join(auths, ", "))
	}
	if r.auth == authAdmin && len(c.AdminFields) == 0 {
		return nil, errors.New("auth: \"admin\" needs the admin credential: declare admin.fields (and the secret in admin.secret_id or ADMIN_SECRET_ID)")
	}
	allowed := c.allowed(role, r.auth)

	// The path: a path below base_url, never another origin.
	p := d.Path
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.Contains(p, "://") || strings.ContainsAny(p, "#\\") {
		return nil, fmt.Errorf("path: %q must be a path below base_url starting with a single /, without scheme, host or fragment", p)
	}
	r.pathSrc = p
	pathPart, queryPart, hasQuery := strings.Cut(p, "?")
	var err error
	if r.path, err = parseTemplate(pathPart); err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	for _, seg := range r.path.segs {
		if seg.name != "" && seg.filter != "" {
			return nil, fmt.Errorf("path: no filter may be applied in a path")
		}
	}
	if hasQuery {
		if r.query, err = parseTemplate(queryPart); err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
	}
	for _, t := range []template{r.path, r.query} {
		if err := checkVars(t, allowed); err != nil {
			return nil, fmt.Errorf("path: %w", err)
		}
		for _, n := range t.names() {
			if secretVar(n) {
				// Servers and proxies log URLs.
				return nil, fmt.Errorf("path: {{%s}} is a credential and must not be in a URL, which servers log: send it in a header or the body", n)
			}
		}
	}

	names := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("headers: %q is not a valid header name", name)
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			return nil, fmt.Errorf("headers: %s is set by the function", name)
		}
		t, err := parseTemplate(d.Headers[name])
		if err != nil {
			return nil, fmt.Errorf("headers.%s: %w", name, err)
		}
		if err := checkVars(t, allowed); err != nil {
			return nil, fmt.Errorf("headers.%s: %w", name, err)
		}
		r.headers = append(r.headers, namedTemplate{name, t})
	}
	if d.BasicAuth != nil {
		u, err := parseTemplate(d.BasicAuth.Username)
		if err == nil {
			err = checkVars(u, allowed)
		}
		if err != nil {
			return nil, fmt.Errorf("basic_auth.username: %w", err)
		}
		pw, err := parseTemplate(d.BasicAuth.Password)
		if err == nil {
			err = checkVars(pw, allowed)
		}
		if err != nil {
			return nil, fmt.Errorf("basic_auth.password: %w", err)
		}
		r.user, r.pass = &u, &pw
	}

	if len(d.JSON) > 0 && len(d.Form) > 0 {
		return nil, errors.New("json, form: a request has one body: set one of them")
	}
	if len(d.JSON) > 0 {
		v, err := decodeJSON(d.JSON)
		if err != nil {
			return nil, fmt.Errorf("json: %w", err)
		}
		if r.jsonBody, err = templateTree(v, allowed, "json"); err != nil {
			return nil, err
		}
	}
	formNames := make([]string, 0, len(d.Form))
	for k := range d.Form {
		formNames = append(formNames, k)
	}
	sort.Strings(formNames)
	for _, k := range formNames {
		t, err := parseTemplate(d.Form[k])
		if err == nil {
			err = checkVars(t, allowed)
		}
		if err != nil {
			return nil, fmt.Errorf("form.%s: %w", k, err)
		}
		r.form = append(r.form, namedTemplate{k, t})
	}

	for _, s := range [][]int{d.Expect, d.Gone, d.LimitStatus} {
		for _, code := range s {
			if code < 100 || code > 599 {
				return nil, fmt.Errorf("expect/gone/limit_status: %d is not an HTTP status", code)
			}
		}
	}
	r.expect = d.Expect
	for _, code := range r.expect {
		if httpsclient.IsRedirect(code) || code == http.StatusTooManyRequests {
			return nil, fmt.Errorf("expect: %d cannot mean success (redirects are refused, 429 is retried)", code)
		}
	}
	if len(d.Gone) > 0 && role != roleRevoke {
		return nil, errors.New("gone: only the revoke request has statuses that mean \"already gone\"")
	}
	r.gone = d.Gone
	if role == roleRevoke && len(r.gone) == 0 {
		r.gone = []int{http.StatusNotFound}
	}
	if len(d.LimitStatus) > 0 && role != roleCreate {
		return nil, errors.New("limit_status: only the create request can be refused for a key limit")
	}
	r.limit = d.LimitStatus
	if d.RetryFor != "" {
		if role != roleTest {
			return nil, errors.New("retry_for: only the test request is retried (while a new key propagates)")
		}
		dur, err := time.ParseDuration(d.RetryFor)
		if err != nil || dur < 0 || dur > maxRetryFor {
			return nil, fmt.Errorf("retry_for: %q is not a Go duration between 0 and %s such as 30s", d.RetryFor, maxRetryFor)
		}
		r.retryFor = dur
	}

	if err := c.parseResponse(r, d); err != nil {
		return nil, err
	}
	return r, nil
}

// templateTree turns every string of a JSON body into a template.
func templateTree(v any, allowed map[string]bool, at string) (any, error) {
	switch x := v.(type) {
	case string:
		t, err := parseTemplate(x)
		if err == nil {
			err = checkVars(t, allowed)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return t, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			t, err := templateTree(e, allowed, at+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = t
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			t, err := templateTree(e, allowed, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	}
	return v, nil
}

// responseFields lists the pointers each request's answer may have, and
// which of them it must have (decided in checkWhole for create).
var responseFields = map[string][]string{
	roleCreate: {"key", "id"},
	roleTest:   {"id"},
	roleList:   {"items", "id", "name"},
}

func (c *Config) parseResponse(r *request, d *requestDoc) error {
	known := responseFields[r.role]
	fields := make([]string, 0, len(d.Response))
	for k := range d.Response {
		fields = append(fields, k)
	}
	sort.Strings(fields)
	for _, k := range fields {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return fmt.Errorf("response.%s: the %s request's answer is not read", k, r.role)
			}
			return fmt.Errorf("response.%s: unknown (the %s answer may name: %s)", k, r.role, strings.Join(known, ", "))
		}
		p, err := parsePointer(d.Response[k])
		if err != nil {
			return fmt.Errorf("response.%s: %w", k, err)
		}
		r.ptr[k] = p
	}
	if r.role == roleList {
		for _, k := range known {
			if _, ok := r.ptr[k]; !ok {
				return fmt.Errorf("response.%s: missing: the list answer must say where the items, and each item's id and name, are", k)
			}
		}
	}
	if len(r.ptr) == 0 {
		if len(d.Sample) > 0 {
			return errors.New("sample: there is no response pointer to check against it")
		}
		return nil
	}
	if len(d.Sample) == 0 {
		return errors.New("sample: missing: give an example answer of the provider (from its documentation), so that the response pointers are checked now rather than at the first rotation")
	}
	sample, err := decodeJSON(d.Sample)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	if r.role == roleList {
		items, ok := r.ptr["items"].resolve(sample)
		arr, isArr := items.([]any)
		if !ok || !isArr || len(arr) == 0 {
			return fmt.Errorf("response.items: JSON pointer %q matches no non-empty array in sample", r.ptr["items"])
		}
		for _, k := range []string{"id", "name"} {
			if _, ok := r.ptr[k].resolveString(arr[0]); !ok {
				return fmt.Errorf("response.%s: JSON pointer %q matches no string in the first item of sample", k, r.ptr[k])
			}
		}
		return nil
	}
	for _, k := range fields {
		if _, ok := r.ptr[k].resolveString(sample); !ok {
			return fmt.Errorf("response.%s: JSON pointer %q matches no string in sample", k, r.ptr[k])
		}
	}
	return nil
}

// checkWhole makes the checks that span requests: that the key and its id
// come from somewhere, that a crashed createSecret can be recovered, and
// that a privileged request only ever touches a key the function can prove
// is this secret's.
func (c *Config) checkWhole() error {
	_, keyInAnswer := c.create.ptr["key"]
	_, idInAnswer := c.create.ptr["id"]
	switch {
	case c.generate != nil && keyInAnswer:
		return errors.New("create.response.key: the key is generated by the function (key.generate); the answer cannot also carry it")
	case c.generate == nil && !keyInAnswer:
		return errors.New("create.response.key: missing: say where the answer carries the new key, or set key.generate so that the function makes it")
	case c.keyID != nil && idInAnswer:
		return errors.New("create.response.id: the key's id is key.id; the answer cannot also carry it")
	case c.keyID == nil && !idInAnswer:
		return errors.New("create.response.id: missing: say where the answer carries the new key's id, or set key.id")
	}
	if c.generate != nil && !c.create.usesVar("key") {
		return errors.New("create: the function generates the key (key.generate), but the create request never sends {{key}}")
	}
	if c.keyID != nil {
		// The same id for every attempt of a rotation: a rerun must
		// overwrite the key the crashed attempt made, not add one.
		if c.create.method != "PUT" {
			return fmt.Errorf("create.method: with key.id the function chooses the key's id, and a rerun after a crash sends the same id again: the request must be an idempotent PUT, not %s", c.create.method)
		}
		if !c.create.usesVar("key_id") {
			return errors.New("create: key.id is set, but the create request never sends {{key_id}}")
		}
	}
	if c.list != nil && c.keyName == nil {
		return errors.New("key.name: missing: the list request finds the keys this function made by their name, so key.name must be set and sent by create")
	}
	if c.keyName != nil && !c.create.usesVar("name") && !(c.keyID != nil && c.keyName.src == c.keyID.src && c.create.usesVar("key_id")) {
		return errors.New("create: key.name is set, but the create request never sends {{name}}: the provider would not know the key's name")
	}
	if c.list == nil && c.keyID == nil && !c.create.usesVar("token") {
		return errors.New("create: without a list request or key.id, the create request must send {{token}} (as Idempotency-Key, say), so that a rerun after a crash gets the key it already made instead of a second one")
	}
	// A privileged request acts on a key id that the secret's content
	// supplies: the function must be able to prove that key is this
	// secret's (key.id, or list and key.name), or the secret's writer could
	// revoke or change any key of the account.
	provable := c.keyID != nil || c.list != nil
	for _, r := range []*request{c.revoke, c.activate} {
		if r != nil && r.auth == authAdmin && !provable {
			return fmt.Errorf("%s.auth: the %s request uses the admin credential on a key id that the secret holds; configure list (with key.name) or key.id, so that the function can prove the key is this secret's", r.role, r.role)
		}
	}
	if c.activate != nil && c.activate.auth == authPending && !c.activate.usesVar("key") {
		return errors.New("activate: with \"auth\": \"pending\" the request must send {{key}}")
	}
	if !c.test.usesVar("key") {
		return errors.New("test: the test request must send the new key ({{key}}): it proves the key works")
	}
	if !c.revoke.usesVar("key_id") {
		return errors.New("revoke: the revoke request must name the key it revokes ({{key_id}})")
	}
	uses := false
	for _, r := range []*request{c.create, c.activate, c.test, c.revoke, c.list} {
		if r != nil && r.auth == authAdmin {
			uses = true
		}
	}
	if uses && c.AdminSecretID == "" {
		return errors.New("admin.secret_id: missing: requests use the admin credential; name its secret in admin.secret_id or ADMIN_SECRET_ID")
	}
	return nil
}

// usesVar reports whether any part of the request uses the variable.
func (r *request) usesVar(name string) bool {
	for _, t := range r.templates() {
		if t.uses(name) {
			return true
		}
	}
	return false
}

func (r *request) templates() []template {
	out := []template{r.path, r.query}
	for _, h := range r.headers {
		out = append(out, h.t)
	}
	if r.user != nil {
		out = append(out, *r.user, *r.pass)
	}
	for _, f := range r.form {
		out = append(out, f.t)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case template:
			out = append(out, x)
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(r.jsonBody)
	return out
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// Describe returns the configuration as log attributes: nothing secret.
func (c Config) Describe() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("provider", c.Provider),
		slog.String("config", c.Source),
		slog.String("base_url", httpsclient.Display(c.Base)),
		slog.Duration("timeout", c.Timeout),
		slog.Bool("function_generates_key", c.generate != nil),
		slog.Bool("list", c.list != nil),
		slog.Bool("activate", c.activate != nil),
		slog.String("grace_period", map[bool]string{false: "until the next rotation", true: "0"}[c.RevokeAtOnce]),
	}
	if c.AdminSecretID != "" {
		attrs = append(attrs, slog.String("admin_secret_id", c.AdminSecretID))
	}
	if c.CAFile != "" {
		attrs = append(attrs, slog.String("ca_file", c.CAFile))
	}
	for _, r := range []*request{c.create, c.activate, c.test, c.revoke, c.list} {
		if r != nil {
			attrs = append(attrs, slog.String(r.role, r.method+" "+r.pathSrc+" (auth "+r.auth+")"))
		}
	}
	return attrs
}
