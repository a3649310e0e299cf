package deploycheck

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// diff lists where want (a resolved template value) is not found in got
// (what an API reported, decoded from JSON). Maps compare the keys of want
// only (an API reports more than a template sets); lists compare as sets of
// the same length; a scalar equals a one-element list of it (IAM writes
// "Action": "x" and ["x"] alike); numbers compare by value.
func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: the template says %s, deployed %s", path, show(want), show(got))}
		}
		var out []string
		for _, k := range sortedKeys(w) {
			out = append(out, diff(path+"."+k, w[k], g[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			if got == nil || len(w) != 1 {
				return []string{fmt.Sprintf("%s: the template says %s, deployed %s", path, show(want), show(got))}
			}
			g = []any{got}
		}
		if len(w) != len(g) {
			return []string{fmt.Sprintf("%s: the template says %s, deployed %s", path, show(want), show(got))}
		}
		used := make([]bool, len(g))
	next:
		for _, we := range w {
			for j, ge := range g {
				if !used[j] && len(diff("", we, ge)) == 0 {
					used[j] = true
					continue next
				}
			}
			return []string{fmt.Sprintf("%s: the template says %s, deployed %s", path, show(want), show(got))}
		}
		return nil
	default:
		if g, ok := got.([]any); ok && len(g) == 1 {
			got = g[0]
		}
		if sameScalar(want, got) {
			return nil
		}
		return []string{fmt.Sprintf("%s: the template says %s, deployed %s", path, show(want), show(got))}
	}
}

func sameScalar(a, b any) bool {
	if _, ok := b.(map[string]any); ok {
		return false
	}
	if _, ok := b.([]any); ok {
		return false
	}
	if b == nil {
		return a == nil || scalar(a) == ""
	}
	sa, sb := scalar(a), scalar(b)
	if sa == sb {
		return true
	}
	fa, errA := strconv.ParseFloat(sa, 64)
	fb, errB := strconv.ParseFloat(sb, 64)
	return errA == nil && errB == nil && fa == fb
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// plain turns an SDK output struct into maps, slices and scalars.
func plain(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

// empty reports whether an API's value stands for "not set".
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		for _, e := range v {
			if !empty(e) {
				return false
			}
		}
		return true
	}
	return false
}
