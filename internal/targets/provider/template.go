package provider

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/secrets-rotation/secrets-rotation/internal/targets/rabbitmq"
)

// A template is text with {{variable}} placeholders, such as
// "/v1/keys/{{key_id}}" or "Bearer {{admin.token}}". Variables come from a
// fixed set that the configuration cannot extend from a secret's content
// (see vars.go); a placeholder may apply one filter: {{key|rabbitmq_sha256}}.
// Where a value lands decides how it is escaped (path segment, query,
// header, JSON string, form field), so no value can change the structure of
// a request, least of all its host, which comes from base_url alone.
type template struct {
	src  string
	segs []segment
}

type segment struct {
	lit    string
	name   string // empty for a literal
	filter string
}

var varName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)?$`)

// filters are the transformations a placeholder may apply to its value.
var filters = map[string]func(string) (string, error){
	// RabbitMQ's password_hash with rabbit_password_hashing_sha256, as the
	// rabbitmq function computes it: the broker receives a hash, never the
	// password.
	"rabbitmq_sha256": rabbitmq.PasswordHash,
}

func parseTemplate(s string) (template, error) {
	t := template{src: s}
	rest := s
	for rest != "" {
		i := strings.Index(rest, "{{")
		j := strings.Index(rest, "}}")
		if i < 0 {
			if j >= 0 {
				return template{}, fmt.Errorf("%q has a }} without {{", s)
			}
			t.segs = append(t.segs, segment{lit: rest})
			break
		}
		if j >= 0 && j < i {
			return template{}, fmt.Errorf("%q has a }} without {{", s)
		}
		if i > 0 {
			t.segs = append(t.segs, segment{lit: rest[:i]})
		}
		end := strings.Index(rest[i+2:], "}}")
		if end < 0 {
			return template{}, fmt.Errorf("%q has a {{ without }}", s)
		}
		inner := strings.TrimSpace(rest[i+2 : i+2+end])
		name, filter, _ := strings.Cut(inner, "|")
		name, filter = strings.TrimSpace(name), strings.TrimSpace(filter)
		if !varName.MatchString(name) {
			return template{}, fmt.Errorf("%q: {{%s}} is not a variable name", s, inner)
		}
		if strings.Contains(inner, "|") {
			if _, ok := filters[filter]; !ok {
				return template{}, fmt.Errorf("%q: unknown filter %q (known: rabbitmq_sha256)", s, filter)
			}
		}
		t.segs = append(t.segs, segment{name: name, filter: filter})
		rest = rest[i+2+end+2:]
	}
	return t, nil
}

// names returns the variables the template uses.
func (t template) names() []string {
	var out []string
	for _, s := range t.segs {
		if s.name != "" {
			out = append(out, s.name)
		}
	}
	return out
}

func (t template) uses(name string) bool {
	for _, n := range t.names() {
		if n == name {
			return true
		}
	}
	return false
}

// render substitutes the variables, each value escaped by esc for the place
// it lands in. A missing variable is an error naming it.
func (t template) render(vs vars, esc func(string) (string, error)) (string, error) {
	var b strings.Builder
	for _, s := range t.segs {
		if s.name == "" {
			b.WriteString(s.lit)
			continue
		}
		v, ok := vs[s.name]
		if !ok {
			return "", fmt.Errorf("{{%s}} has no value here", s.name)
		}
		val := v.s
		if s.filter != "" {
			var err error
			if val, err = filters[s.filter](val); err != nil {
				return "", fmt.Errorf("{{%s|%s}}: %w", s.name, s.filter, err)
			}
		}
		if esc != nil {
			var err error
			if val, err = esc(val); err != nil {
				return "", fmt.Errorf("{{%s}}: %w", s.name, err)
			}
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

// pattern returns a regular expression that matches what the template
// renders to for this secret and any rotation token: {{token}} becomes the
// one capture group. Only templates of token, secret_hash, secret_name and
// config.* constants can be turned into a pattern (see keyTemplate).
func (t template) pattern(vs vars) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, s := range t.segs {
		switch {
		case s.name == "":
			b.WriteString(regexp.QuoteMeta(s.lit))
		case s.name == "token":
			b.WriteString("(" + tokenPattern + ")")
		default:
			v, ok := vs[s.name]
			if !ok {
				return nil, fmt.Errorf("{{%s}} has no value here", s.name)
			}
			b.WriteString(regexp.QuoteMeta(v.s))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}
