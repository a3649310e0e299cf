package dbsecret

import (
	"strings"
	"testing"
)

func TestParseDefaultsAndStrategy(t *testing.T) {
	s, err := Parse(`{"engine":"Postgres","host":"h","username":"app","password":"p"}`, Defaults{Port: 5432, DBName: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 5432 || s.DBName != "postgres" || !s.SSL || s.Engine != "postgres" || s.Strategy() != SingleUser {
		t.Fatalf("defaults not applied: %+v", s)
	}
	s, err = Parse(`{"host":"h","port":"3307","username":"app_clone","password":"p","ssl":false,"masterarn":"arn:x"}`, Defaults{Port: 3306})
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 3307 || s.SSL || s.Strategy() != AlternatingUsers || s.OtherUser() != "app" || s.BaseUser() != "app" {
		t.Fatalf("parsed %+v", s)
	}
}

func TestParseErrorsNameTheFieldNotTheValue(t *testing.T) {
	for in, want := range map[string]string{
		`not json s3cret`:       "not a JSON object",
		`{"password":"s3cret"}`: `"username" is missing`,
		`{"username":"u"}`:      `"password" is missing`,
		`{"username":"u","password":"s3cret","port":"x"}`:   `"port" must be a number`,
		`{"username":"u","password":"s3cret","port":70000}`: `"port" must be a number`,
		`{"username":"u","password":"s3cret","ssl":"no?"}`:  `"ssl" must be true or false`,
		`{"username":"u","password":"s3cret","host":5}`:     `"host" must be a string`,
	} {
		_, err := Parse(in, Defaults{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestWithKeepsUnknownFields(t *testing.T) {
	s, err := Parse(`{"username":"u","password":"old","host":"h","custom":{"a":[1,2.50]},"n":12345678901234567890}`, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.With("u_clone", "new<&>")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"custom":{"a":[1,2.50]}`, `"n":12345678901234567890`, `"username":"u_clone"`, `"password":"new<&>"`, `"host":"h"`} {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
}
