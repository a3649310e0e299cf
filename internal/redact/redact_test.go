package redact

import "testing"

func TestQuotes(t *testing.T) {
	const secret = "Xq7-pL2#vB9zR4"
	tests := []struct {
		name    string
		s       string
		secrets []string
		want    bool
	}{
		{"whole secret", "near \"" + secret + "\": syntax error", []string{secret}, true},
		{"six characters of it", "syntax error at or near \"pL2#vB\"", []string{secret}, true},
		{"five characters are not a quote", "syntax error at or near \"pL2#v\"", []string{secret}, false},
		{"unrelated text", "access denied for user 'app'", []string{secret}, false},
		{"a short secret quoted whole", "bad value abc", []string{"abc"}, true},
		{"a short secret not quoted", "bad value ab", []string{"abc"}, false},
		{"empty secrets are ignored", "anything", []string{"", ""}, false},
		{"any of several", "… 2#vB9z …", []string{"another-secret", secret}, true},
		{"no secrets", "anything", nil, false},
	}
	for _, tt := range tests {
		if got := Quotes(tt.s, tt.secrets...); got != tt.want {
			t.Errorf("%s: Quotes(%q) = %v, want %v", tt.name, tt.s, got, tt.want)
		}
	}
}
