package provider

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// redacted replaces what must never reach a log line.
const redacted = "[REDACTED]"

// maxExcerpt bounds the part of a provider's error body that is logged.
const maxExcerpt = 512

// keyLike matches what could be a key or token: a long run of the
// characters keys are written in, with at least one digit (checked below).
var keyLike = regexp.MustCompile(`[A-Za-z0-9+/=_\-.~:]{20,}`)

// redact returns an excerpt of a provider's answer that is safe to log:
// every known credential (in its raw, JSON-escaped and base64 forms) and
// anything else that looks like a key is replaced. A provider may echo the
// key it refused, or the Authorization header it got.
func redact(body string, secrets []string) string {
	s := strings.ReplaceAll(body, `\/`, `/`)
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		forms := []string{sec, base64.StdEncoding.EncodeToString([]byte(sec))}
		if b, err := json.Marshal(sec); err == nil {
			forms = append(forms, strings.Trim(string(b), `"`))
		}
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, redacted)
		}
	}
	s = keyLike.ReplaceAllStringFunc(s, func(m string) string {
		if strings.ContainsAny(m, "0123456789") || len(m) >= 32 {
			return redacted
		}
		return m
	})
	if len(s) > maxExcerpt {
		cut := maxExcerpt
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
