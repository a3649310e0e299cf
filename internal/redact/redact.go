// Package redact decides whether text a server sent back (an error message,
// a diagnostic) quotes a secret, so that a target can withhold it from the
// error it returns and from every log line.
package redact

import "strings"

// Window is the shortest run of a secret's characters that counts as
// quoting it. A server quotes a statement "near" an error, so a message may
// hold only part of a password or verifier; six characters of a random
// password are already too much to log.
const Window = 6

// Quotes reports whether s holds Window or more consecutive characters of
// one of secrets, or the whole of a secret shorter than that. Empty secrets
// are ignored.
func Quotes(s string, secrets ...string) bool {
	for _, sec := range secrets {
		if len(sec) < Window {
			if sec != "" && strings.Contains(s, sec) {
				return true
			}
			continue
		}
		for i := 0; i+Window <= len(sec); i++ {
			if strings.Contains(s, sec[i:i+Window]) {
				return true
			}
		}
	}
	return false
}
