// Package deploycheck deploys the SAM application (template.yaml, built and
// packaged) into the test bed's LocalStack CloudFormation, reads back what
// was made, and compares it with what the template says: every property
// the APIs report, the outputs, and the wiring between resources (each
// function's role, log group, alarm, permission and example schedule belong
// to that function; the EventBridge rule matches real Secrets Manager
// events; the topic policy admits that rule and those alarms). cfn-lint and
// the SAM translator cannot see a wiring mistake: a template that names the
// wrong resource is still valid.
//
// What it compares is derived from the template itself (its resources,
// parameters and the naming convention <F>Function, <F>Role, <F>LogGroup,
// <F>...), so it follows the template as functions are added.
package deploycheck

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a CloudFormation template as plain Go values, with the short
// form intrinsic functions (!Ref, !Sub ...) in their long form.
type Template map[string]any

// ParseTemplate reads a template in YAML (short or long form) or JSON.
func ParseTemplate(b []byte) (Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("parse template: empty document")
	}
	top, ok := decode(&doc).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template: not a mapping")
	}
	return Template(top), nil
}

// JSON returns the template as JSON, which CloudFormation reads as well.
func (t Template) JSON() ([]byte, error) { return json.Marshal(map[string]any(t)) }

// Clone returns a deep copy, for planting a mistake in it.
func (t Template) Clone() Template {
	b, err := t.JSON()
	if err != nil {
		panic(err) // it came from YAML or JSON: it encodes
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return Template(m)
}

// Resources returns the resources by logical id.
func (t Template) Resources() map[string]map[string]any {
	out := map[string]map[string]any{}
	res, _ := t["Resources"].(map[string]any)
	for id, r := range res {
		if m, ok := r.(map[string]any); ok {
			out[id] = m
		}
	}
	return out
}

// Parameters returns the parameter declarations by name.
func (t Template) Parameters() map[string]map[string]any {
	out := map[string]map[string]any{}
	ps, _ := t["Parameters"].(map[string]any)
	for name, p := range ps {
		if m, ok := p.(map[string]any); ok {
			out[name] = m
		}
	}
	return out
}

// decode turns a YAML node into plain values; a tag such as !Sub becomes
// {"Fn::Sub": value}, !Ref and !Condition keep their names, !GetAtt "A.B"
// becomes ["A", "B"].
func decode(n *yaml.Node) any {
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return decode(n.Content[0])
	case yaml.AliasNode:
		return decode(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = decode(n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			s = append(s, decode(c))
		}
		v = s
	default:
		switch n.Tag {
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err == nil {
				v = f
			} else {
				v = n.Value
			}
		case "!!bool":
			var b bool
			_ = n.Decode(&b)
			v = b
		case "!!null":
			v = nil
		default:
			v = n.Value
		}
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v
	}
	name := strings.TrimPrefix(n.Tag, "!")
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}
	case "GetAtt":
		if s, ok := v.(string); ok {
			a, b, _ := strings.Cut(s, ".")
			v = []any{a, b}
		}
	}
	return map[string]any{"Fn::" + name: v}
}
