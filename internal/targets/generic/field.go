package generic

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// fieldRef locates one top-level member of a JSON object held as text, so
// that the member's value can be replaced by splicing bytes: everything else
// in the document (other members, their order, numbers such as 1.50,
// whitespace) is kept byte for byte, which re-encoding a decoded map would
// not guarantee.
type fieldRef struct {
	doc   string
	name  string
	found bool
	// start and end delimit the member's value when found; otherwise
	// insert is where a new member goes, and empty says whether the
	// object has no members (so the new one needs no leading comma).
	start, end int
	insert     int
	empty      bool
}

// errNotObject is wrapped by findField when the document is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// findField finds the member name in doc. Its errors never quote doc: the
// document is a secret, and the messages of encoding/json quote input.
func findField(doc, name string) (fieldRef, error) {
	ref := fieldRef{doc: doc, name: name, empty: true}
	if !isJSONObject(doc) {
		return fieldRef{}, errNotObject
	}
	dec := json.NewDecoder(strings.NewReader(doc))
	if _, err := dec.Token(); err != nil { // the opening brace
		return fieldRef{}, errNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fieldRef{}, errNotObject
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fieldRef{}, errNotObject
		}
		end := int(dec.InputOffset())
		start := end - len(raw)
		if start < 0 || doc[start:end] != string(raw) {
			// Decoder offsets are documented only loosely; refuse rather
			// than splice at a wrong place.
			return fieldRef{}, fmt.Errorf("cannot locate field %q in the secret", name)
		}
		ref.empty = false
		ref.insert = end
		if key != name {
			continue
		}
		if ref.found {
			return fieldRef{}, fmt.Errorf("field %q appears more than once in the secret", name)
		}
		if raw[0] != '"' {
			return fieldRef{}, fmt.Errorf("field %q of the secret is a JSON %s, not a string", name, jsonType(raw[0]))
		}
		ref.found, ref.start, ref.end = true, start, end
	}
	if ref.empty {
		// Insert just before the closing brace.
		ref.insert = strings.LastIndexByte(doc, '}')
	}
	return ref, nil
}

// isJSONObject reports whether s is one valid JSON object.
func isJSONObject(s string) bool {
	t := strings.TrimLeft(s, " \t\r\n")
	return strings.HasPrefix(t, "{") && json.Valid([]byte(s))
}

func jsonType(first byte) string {
	switch first {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// value returns the member's string value; ok is false when it is absent.
func (f fieldRef) value() (v string, ok bool, err error) {
	if !f.found {
		return "", false, nil
	}
	if err := json.Unmarshal([]byte(f.doc[f.start:f.end]), &v); err != nil {
		// Unreachable for a valid document; the message is dropped because
		// it could quote the value.
		return "", false, fmt.Errorf("decode field %q of the secret", f.name)
	}
	return v, true, nil
}

// with returns the document with the member's value set to v, adding the
// member at the end of the object when it is absent.
func (f fieldRef) with(v string) string {
	if f.found {
		return f.doc[:f.start] + jsonString(v) + f.doc[f.end:]
	}
	member := jsonString(f.name) + ":" + jsonString(v)
	if !f.empty {
		member = "," + member
	}
	return f.doc[:f.insert] + member + f.doc[f.insert:]
}

// jsonString encodes s as a JSON string without the HTML escaping of
// json.Marshal, so that a password with < > & stays readable in the console.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
