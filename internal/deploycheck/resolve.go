package deploycheck

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// noValue is what AWS::NoValue resolves to: the property or list element is
// dropped.
type noValueT struct{}

var noValue = noValueT{}

// resolver evaluates the intrinsic functions of a deployed template with the
// stack's real parameter values and the physical ids and ARNs of what was
// made, so a property can be compared with what the APIs report.
type resolver struct {
	tpl        Template
	params     map[string]any // string, or []any of strings for list parameters
	pseudo     map[string]string
	physical   map[string]string // logical id -> physical id
	attr       func(logical, name string) (string, error)
	conditions map[string]bool
}

func (r *resolver) condition(name string) (bool, error) {
	if v, ok := r.conditions[name]; ok {
		return v, nil
	}
	conds, _ := r.tpl["Conditions"].(map[string]any)
	expr, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("condition %s is not declared", name)
	}
	v, err := r.eval(expr)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is not a boolean: %v", name, v)
	}
	r.conditions[name] = b
	return b, nil
}

// active reports whether a resource or output with an optional Condition
// exists in this stack.
func (r *resolver) active(decl map[string]any) (bool, error) {
	c, ok := decl["Condition"].(string)
	if !ok {
		return true, nil
	}
	return r.condition(c)
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (r *resolver) ref(name string) (any, error) {
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if name == "AWS::NoValue" {
		return noValue, nil
	}
	if v, ok := r.pseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.physical[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("Ref %s: no such parameter, pseudo parameter or deployed resource", name)
}

func (r *resolver) eval(v any) (any, error) {
	switch v := v.(type) {
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			x, err := r.eval(e)
			if err != nil {
				return nil, err
			}
			if x != noValue {
				out = append(out, x)
			}
		}
		return out, nil
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return r.fn(k, arg)
				}
			}
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			x, err := r.eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if x != noValue {
				out[k] = x
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func (r *resolver) fn(name string, arg any) (any, error) {
	switch name {
	case "Ref":
		s, _ := arg.(string)
		return r.ref(s)
	case "Condition":
		s, _ := arg.(string)
		return r.condition(s)
	case "Fn::GetAtt":
		parts, _ := arg.([]any)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v: want [resource, attribute]", arg)
		}
		return r.attr(fmt.Sprint(parts[0]), fmt.Sprint(parts[1]))
	case "Fn::Sub":
		return r.sub(arg)
	case "Fn::Join":
		a, _ := arg.([]any)
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Join %v: want [delimiter, list]", arg)
		}
		list, err := r.eval(a[1])
		if err != nil {
			return nil, err
		}
		items, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("Fn::Join: %v is not a list", list)
		}
		s := make([]string, len(items))
		for i, it := range items {
			s[i] = scalar(it)
		}
		return strings.Join(s, fmt.Sprint(a[0])), nil
	case "Fn::If":
		a, _ := arg.([]any)
		if len(a) != 3 {
			return nil, fmt.Errorf("Fn::If %v: want [condition, then, else]", arg)
		}
		c, err := r.condition(fmt.Sprint(a[0]))
		if err != nil {
			return nil, err
		}
		if c {
			return r.eval(a[1])
		}
		return r.eval(a[2])
	case "Fn::Equals":
		a, err := r.eval(arg)
		if err != nil {
			return nil, err
		}
		l, _ := a.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("Fn::Equals %v: want two values", arg)
		}
		return scalar(l[0]) == scalar(l[1]), nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		a, err := r.eval(arg)
		if err != nil {
			return nil, err
		}
		l, _ := a.([]any)
		bs := make([]bool, len(l))
		for i, x := range l {
			b, ok := x.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: %v is not a boolean", name, x)
			}
			bs[i] = b
		}
		switch name {
		case "Fn::Not":
			if len(bs) != 1 {
				return nil, fmt.Errorf("Fn::Not wants one condition")
			}
			return !bs[0], nil
		case "Fn::And":
			for _, b := range bs {
				if !b {
					return false, nil
				}
			}
			return true, nil
		default:
			for _, b := range bs {
				if b {
					return true, nil
				}
			}
			return false, nil
		}
	case "Fn::Select":
		a, err := r.eval(arg)
		if err != nil {
			return nil, err
		}
		l, _ := a.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("Fn::Select %v: want [index, list]", arg)
		}
		i, err := strconv.Atoi(scalar(l[0]))
		items, _ := l[1].([]any)
		if err != nil || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("Fn::Select: index %v out of %v", l[0], l[1])
		}
		return items[i], nil
	case "Fn::Split":
		a, err := r.eval(arg)
		if err != nil {
			return nil, err
		}
		l, _ := a.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("Fn::Split %v: want [delimiter, string]", arg)
		}
		var out []any
		for _, s := range strings.Split(scalar(l[1]), scalar(l[0])) {
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is not supported by deploycheck's resolver: add it in resolve.go", name)
}

func (r *resolver) sub(arg any) (any, error) {
	var tmpl string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		if len(a) != 2 {
			return nil, fmt.Errorf("Fn::Sub %v: want [string, variables]", arg)
		}
		tmpl = fmt.Sprint(a[0])
		m, _ := a[1].(map[string]any)
		for k, v := range m {
			x, err := r.eval(v)
			if err != nil {
				return nil, err
			}
			vars[k] = x
		}
	default:
		return nil, fmt.Errorf("Fn::Sub %v: want a string", arg)
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v = x
		} else if res, at, ok := strings.Cut(name, "."); ok {
			v, err = r.attr(res, at)
		} else {
			v, err = r.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return scalar(v)
	})
	return out, firstErr
}

// scalar renders a resolved scalar as CloudFormation passes it to an API:
// numbers without a trailing ".0", lists joined with commas.
func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		s := make([]string, len(v))
		for i, e := range v {
			s[i] = scalar(e)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprint(v)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
