package password

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaultPolicy(t *testing.T) {
	p, err := PolicyFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p != DefaultPolicy() {
		t.Fatalf("PolicyFromEnv with nothing set = %+v, want %+v", p, DefaultPolicy())
	}
	if p.Length != 32 || !p.RequireEachIncludedType {
		t.Fatalf("defaults = %+v, want Length 32 and RequireEachIncludedType", p)
	}
}

func TestGenerateLength(t *testing.T) {
	for _, n := range []int{1, 4, 32, 100, MaxLength} {
		p := DefaultPolicy()
		p.Length = n
		if n < 4 {
			p.RequireEachIncludedType = false
		}
		s, err := p.Generate()
		if err != nil {
			t.Fatalf("Length %d: %v", n, err)
		}
		if len(s) != n {
			t.Errorf("Length %d: got %d characters", n, len(s))
		}
	}
}

func TestGenerateExclusions(t *testing.T) {
	tests := []struct {
		name      string
		policy    Policy
		forbidden string
	}{
		{"numbers", Policy{Length: 64, ExcludeNumbers: true, RequireEachIncludedType: true}, Numbers},
		{"punctuation", Policy{Length: 64, ExcludePunctuation: true, RequireEachIncludedType: true}, Punctuation},
		{"uppercase", Policy{Length: 64, ExcludeUppercase: true, RequireEachIncludedType: true}, Uppercase},
		{"lowercase", Policy{Length: 64, ExcludeLowercase: true, RequireEachIncludedType: true}, Lowercase},
		{"no space by default", Policy{Length: 64}, Space},
		{"characters", Policy{Length: 64, ExcludeCharacters: `"'\/@ abcXYZ019`, IncludeSpace: true, RequireEachIncludedType: true}, `"'\/@ abcXYZ019`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 500 {
				s, err := tt.policy.Generate()
				if err != nil {
					t.Fatal(err)
				}
				if i := strings.IndexAny(s, tt.forbidden); i >= 0 {
					t.Fatalf("password contains excluded character %q", s[i])
				}
			}
		})
	}
}

func TestGenerateOnlyAllowedCharacters(t *testing.T) {
	p := Policy{Length: 200, IncludeSpace: true}
	allowed := Lowercase + Uppercase + Numbers + Punctuation + Space
	seenSpace := false
	for range 200 {
		s, err := p.Generate()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range s {
			if !strings.ContainsRune(allowed, r) {
				t.Fatalf("unexpected character %q", r)
			}
		}
		seenSpace = seenSpace || strings.Contains(s, " ")
	}
	if !seenSpace {
		t.Error("IncludeSpace never produced a space in 40000 characters")
	}
}

func TestRequireEachIncludedType(t *testing.T) {
	// At the minimum length every character is forced, which is where a
	// mistake would show first.
	tests := []Policy{
		{Length: 4, RequireEachIncludedType: true},
		{Length: 5, IncludeSpace: true, RequireEachIncludedType: true},
		{Length: 3, ExcludePunctuation: true, RequireEachIncludedType: true},
		{Length: 8, ExcludeCharacters: "abcdefghijklmnopqrstuvwxy", RequireEachIncludedType: true},
	}
	for _, p := range tests {
		classes := p.classes()
		for range 2000 {
			s, err := p.Generate()
			if err != nil {
				t.Fatalf("%+v: %v", p, err)
			}
			for _, c := range classes {
				if !strings.ContainsAny(s, c) {
					t.Fatalf("%+v: password lacks a character of class %q", p, c)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   string // substring of the error; "" for no error
	}{
		{"zero length", Policy{Length: 0}, "PASSWORD_LENGTH"},
		{"negative length", Policy{Length: -1}, "PASSWORD_LENGTH"},
		{"too long", Policy{Length: 4097}, "PASSWORD_LENGTH"},
		{"max length", Policy{Length: 4096}, ""},
		{"every class excluded", Policy{Length: 8, ExcludeNumbers: true, ExcludePunctuation: true, ExcludeUppercase: true, ExcludeLowercase: true}, "every character class is excluded"},
		{"every character excluded", Policy{Length: 8, ExcludePunctuation: true, ExcludeUppercase: true, ExcludeLowercase: true, ExcludeCharacters: Numbers}, "every character class is excluded"},
		{"space alone", Policy{Length: 8, ExcludeNumbers: true, ExcludePunctuation: true, ExcludeUppercase: true, ExcludeLowercase: true, IncludeSpace: true}, ""},
		{"shorter than classes", Policy{Length: 3, RequireEachIncludedType: true}, "REQUIRE_EACH_INCLUDED_TYPE"},
		{"class emptied by exclusions does not count", Policy{Length: 3, ExcludeCharacters: Numbers, RequireEachIncludedType: true}, ""},
		{"short without requirement", Policy{Length: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			if _, gerr := tt.policy.Generate(); (gerr == nil) != (err == nil) {
				t.Fatalf("Generate error %v disagrees with Validate error %v", gerr, err)
			}
		})
	}
}

func TestPolicyFromEnv(t *testing.T) {
	p, err := PolicyFromEnv(env(map[string]string{
		"PASSWORD_LENGTH":            "20",
		"EXCLUDE_CHARACTERS":         `"'\`,
		"EXCLUDE_NUMBERS":            "true",
		"EXCLUDE_PUNCTUATION":        "1",
		"EXCLUDE_UPPERCASE":          "FALSE",
		"EXCLUDE_LOWERCASE":          "f",
		"INCLUDE_SPACE":              "T",
		"REQUIRE_EACH_INCLUDED_TYPE": "false",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{
		Length:             20,
		ExcludeCharacters:  `"'\`,
		ExcludeNumbers:     true,
		ExcludePunctuation: true,
		IncludeSpace:       true,
	}
	if p != want {
		t.Fatalf("got %+v, want %+v", p, want)
	}
}

// TestPolicyFromEnvMinimum: the shortest configurable password is the SAM
// template's minimum of PasswordLength, MinLength (8); 7 is refused.
func TestPolicyFromEnvMinimum(t *testing.T) {
	p, err := PolicyFromEnv(env(map[string]string{"PASSWORD_LENGTH": "8"}))
	if err != nil || p.Length != 8 || MinLength != 8 {
		t.Fatalf("PASSWORD_LENGTH=8: %+v, %v", p, err)
	}
	if _, err := PolicyFromEnv(env(map[string]string{"PASSWORD_LENGTH": "7"})); err == nil {
		t.Fatal("PASSWORD_LENGTH=7 accepted")
	}
}

func TestPolicyFromEnvErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"PASSWORD_LENGTH": "0"}, []string{"PASSWORD_LENGTH"}},
		{map[string]string{"PASSWORD_LENGTH": "1"}, []string{"PASSWORD_LENGTH must be between 8 and 4096, got 1"}},
		{map[string]string{"PASSWORD_LENGTH": "7"}, []string{"PASSWORD_LENGTH must be between 8 and 4096, got 7"}},
		{map[string]string{"PASSWORD_LENGTH": "4097"}, []string{"PASSWORD_LENGTH"}},
		{map[string]string{"PASSWORD_LENGTH": "long"}, []string{"PASSWORD_LENGTH", `"long"`}},
		{map[string]string{"EXCLUDE_NUMBERS": "yes"}, []string{"EXCLUDE_NUMBERS", `"yes"`}},
		{map[string]string{"INCLUDE_SPACE": "maybe"}, []string{"INCLUDE_SPACE", `"maybe"`}},
		{map[string]string{"REQUIRE_EACH_INCLUDED_TYPE": "on"}, []string{"REQUIRE_EACH_INCLUDED_TYPE", `"on"`}},
		{map[string]string{
			"EXCLUDE_NUMBERS": "true", "EXCLUDE_PUNCTUATION": "true",
			"EXCLUDE_UPPERCASE": "true", "EXCLUDE_LOWERCASE": "true",
		}, []string{"every character class is excluded"}},
	}
	for _, tt := range tests {
		_, err := PolicyFromEnv(env(tt.env))
		if err == nil {
			t.Errorf("%v: no error", tt.env)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", tt.env, err, w)
			}
		}
	}
}

func TestUniformity(t *testing.T) {
	// Two characters left: each is expected in half of the draws. Over 20000
	// draws the standard deviation of the share is about 0.35%, so a 40%
	// floor is some 28 deviations away and cannot fail by chance.
	p := Policy{
		Length:             4000,
		ExcludeNumbers:     true,
		ExcludePunctuation: true,
		ExcludeUppercase:   true,
		ExcludeCharacters:  "cdefghijklmnopqrstuvwxyz",
	}
	var s string
	for range 5 {
		part, err := p.Generate()
		if err != nil {
			t.Fatal(err)
		}
		s += part
	}
	for _, c := range "ab" {
		if n := strings.Count(s, string(c)); n < 8000 {
			t.Errorf("%q appeared %d times in 20000 draws, want at least 8000", c, n)
		}
	}
}

func TestRandomBytes(t *testing.T) {
	a, err := RandomBytes(32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := RandomBytes(32)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 32 || string(a) == string(b) {
		t.Fatalf("RandomBytes(32) gave %d bytes, equal twice: %v", len(a), string(a) == string(b))
	}
	for _, n := range []int{0, -1} {
		if _, err := RandomBytes(n); err == nil {
			t.Errorf("RandomBytes(%d): no error", n)
		}
	}
}

func TestEncodeKey(t *testing.T) {
	decoders := map[string]func(string) ([]byte, error){
		EncodingHex:       hex.DecodeString,
		EncodingBase64:    base64.StdEncoding.DecodeString,
		EncodingBase64URL: base64.RawURLEncoding.DecodeString,
	}
	for _, n := range []int{16, 31, 32, 64, 1024} {
		key, err := RandomBytes(n)
		if err != nil {
			t.Fatal(err)
		}
		for enc, decode := range decoders {
			s, err := EncodeKey(key, enc)
			if err != nil {
				t.Fatalf("%s: %v", enc, err)
			}
			got, err := decode(s)
			if err != nil {
				t.Fatalf("%s: decode: %v", enc, err)
			}
			if len(got) != n || string(got) != string(key) {
				t.Fatalf("%s: %d bytes round-tripped to %d different bytes", enc, n, len(got))
			}
			if enc == EncodingBase64URL && strings.ContainsAny(s, "=+/") {
				t.Fatalf("base64url key contains padding or standard characters")
			}
		}
	}
	if _, err := EncodeKey([]byte{1}, "base32"); err == nil || !strings.Contains(err.Error(), `"base32"`) {
		t.Fatalf("unknown encoding: error %v, want one naming it", err)
	}
}
