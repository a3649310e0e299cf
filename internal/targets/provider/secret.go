package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// secret is one version of a rotated secret: a JSON object whose key, key
// id, issue time and replaced key id fields the function writes (their
// names are the configuration's "secret" section), every other field kept
// as it is.
type secret struct {
	fields map[string]json.RawMessage
	names  fieldNames
}

// maxIDLen bounds a key id read from a secret: ids go into URL paths.
const maxIDLen = 256

// parseSecret reads a version. Its errors never quote the value: the
// messages of encoding/json can quote input, so they are replaced, not
// wrapped.
func parseSecret(value string, names fieldNames) (secret, error) {
	s := secret{names: names}
	if err := json.Unmarshal([]byte(value), &s.fields); err != nil || s.fields == nil {
		return secret{}, errors.New("secret is not a JSON object")
	}
	for _, f := range []string{names.key, names.id, names.issued, names.replaced} {
		if _, err := s.str(f); err != nil {
			return secret{}, err
		}
	}
	for _, f := range []string{names.id, names.replaced} {
		id, _ := s.str(f)
		if len(id) > maxIDLen || strings.ContainsFunc(id, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			// Not echoed: a malformed id may be a pasted key.
			return secret{}, fmt.Errorf("field %q of the secret is not a key id (at most %d characters, no control characters)", f, maxIDLen)
		}
	}
	return s, nil
}

// str returns the string field name, "" when absent or null.
func (s secret) str(name string) (string, error) {
	raw, ok := s.fields[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("field %q of the secret is not a string", name)
	}
	return v, nil
}

func (s secret) key() string      { v, _ := s.str(s.names.key); return v }
func (s secret) id() string       { v, _ := s.str(s.names.id); return v }
func (s secret) replaced() string { v, _ := s.str(s.names.replaced); return v }

// with returns the secret with a new key, every other field kept.
// replaced is the id of the key the new one replaces (empty for none).
func (s secret) with(key, id, issued, replaced string) (string, error) {
	out := make(map[string]json.RawMessage, len(s.fields)+4)
	for k, v := range s.fields {
		out[k] = v
	}
	delete(out, s.names.replaced)
	set := map[string]string{s.names.key: key, s.names.id: id, s.names.issued: issued}
	if replaced != "" && replaced != id {
		set[s.names.replaced] = replaced
	}
	for k, v := range set {
		b, err := json.Marshal(v)
		if err != nil {
			return "", errors.New("encode secret")
		}
		out[k] = b
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", errors.New("encode secret")
	}
	return string(b), nil
}
