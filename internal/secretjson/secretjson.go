// Package secretjson reads and rewrites the JSON object of a rotated
// secret's value. The value is untrusted input: fields are typed strictly,
// and every error names the field and the problem, never a value (it holds
// a password). Fields the reader does not know are kept as they are when
// the value is rewritten.
package secretjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Object is a secret's value: a JSON object, field by field.
type Object struct {
	raw map[string]json.RawMessage
}

// Parse reads value, which must be one JSON object. Numbers are kept as
// written.
func Parse(value string) (*Object, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errors.New("secret value is not a JSON object")
	}
	return &Object{raw: raw}, nil
}

// Has reports whether the field is present, even as null.
func (o *Object) Has(name string) bool {
	_, ok := o.raw[name]
	return ok
}

// Raw returns the field as stored; ok is false when it is absent or null.
func (o *Object) Raw(name string) (v json.RawMessage, ok bool) {
	v, ok = o.raw[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// String sets *dst to the string field name when it is present and not
// null; anything but a string is an error.
func (o *Object) String(name string, dst *string) error {
	v, ok := o.Raw(name)
	if !ok {
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("secret field %q must be a string", name)
	}
	return nil
}

// Strings is String for each field of dst.
func (o *Object) Strings(dst map[string]*string) error {
	// In a fixed order, so that the first bad field named is always the same.
	names := make([]string, 0, len(dst))
	for n := range dst {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := o.String(n, dst[n]); err != nil {
			return err
		}
	}
	return nil
}

// Port sets *dst to the port field name when it is present and not null:
// a JSON number or a string of digits (both appear in the wild; the RDS
// console writes a number), between 1 and 65535.
func (o *Object) Port(name string, dst *int) error {
	v, ok := o.Raw(name)
	if !ok {
		return nil
	}
	p, err := ParsePort(name, v)
	if err != nil {
		return err
	}
	*dst = p
	return nil
}

// ParsePort reads the port field name from its raw JSON, as Port does.
func ParsePort(name string, v json.RawMessage) (int, error) {
	text := string(v)
	if len(text) > 0 && text[0] == '"' {
		if err := json.Unmarshal(v, &text); err != nil {
			return 0, fmt.Errorf("secret field %q must be a number", name)
		}
	}
	p, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("secret field %q must be a number between 1 and 65535", name)
	}
	return p, nil
}

// Bool sets *dst to the boolean field name when it is present and not
// null: true or false, as JSON or as a string.
func (o *Object) Bool(name string, dst *bool) error {
	v, ok := o.Raw(name)
	if !ok {
		return nil
	}
	var b bool
	if json.Unmarshal(v, &b) == nil {
		*dst = b
		return nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if b, err := strconv.ParseBool(s); err == nil {
			*dst = b
			return nil
		}
	}
	return fmt.Errorf("secret field %q must be true or false", name)
}

// With returns the object's JSON with the string fields of set replaced
// (or added) and every other field kept as it was. Characters such as <, >
// and & are written as they are: a password keeps its characters.
func (o *Object) With(set map[string]string) (string, error) {
	out := make(map[string]json.RawMessage, len(o.raw)+len(set))
	for k, v := range o.raw {
		out[k] = v
	}
	for k, v := range set {
		b, err := marshal(v)
		if err != nil {
			return "", fmt.Errorf("encode secret field %q: %w", k, err)
		}
		out[k] = b
	}
	b, err := marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode secret: %w", err)
	}
	return string(b), nil
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
