package provider

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// pointer is a JSON Pointer (RFC 6901): "/data/0/key", or "" for the whole
// document. "~1" stands for "/" and "~0" for "~" inside a token.
type pointer struct {
	src    string
	tokens []string
}

func parsePointer(s string) (pointer, error) {
	if s == "" {
		return pointer{}, nil
	}
	if !strings.HasPrefix(s, "/") {
		return pointer{}, fmt.Errorf("JSON pointer %q must be empty or start with /", s)
	}
	parts := strings.Split(s[1:], "/")
	for i, p := range parts {
		for j := 0; j < len(p); j++ {
			if p[j] == '~' && (j+1 == len(p) || (p[j+1] != '0' && p[j+1] != '1')) {
				return pointer{}, fmt.Errorf("JSON pointer %q has a ~ that is not ~0 or ~1", s)
			}
		}
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return pointer{src: s, tokens: parts}, nil
}

func (p pointer) String() string { return p.src }

// resolve returns the value p names in doc (decoded with UseNumber).
func (p pointer) resolve(doc any) (any, bool) {
	v := doc
	for _, tok := range p.tokens {
		switch x := v.(type) {
		case map[string]any:
			next, ok := x[tok]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) || (len(tok) > 1 && tok[0] == '0') {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// resolveString returns the string (or number, as written) p names in doc.
func (p pointer) resolveString(doc any) (string, bool) {
	v, ok := p.resolve(doc)
	if !ok {
		return "", false
	}
	switch x := v.(type) {
	case string:
		return x, x != ""
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// decodeJSON decodes a document with numbers kept as written.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}
