package secretjson

import (
	"strings"
	"testing"
)

func TestFieldsAreTypedAndErrorsNameTheField(t *testing.T) {
	const value = `{"host":"db","port":"5432","ssl":"false","n":null,"password":"p<&>w","other":{"keep":[1,2.50]}}`
	o, err := Parse(value)
	if err != nil {
		t.Fatal(err)
	}
	var host, missing string
	port, ssl := 0, true
	if err := o.Strings(map[string]*string{"host": &host, "missing": &missing, "n": &missing}); err != nil {
		t.Fatal(err)
	}
	if err := o.Port("port", &port); err != nil {
		t.Fatal(err)
	}
	if err := o.Bool("ssl", &ssl); err != nil {
		t.Fatal(err)
	}
	if host != "db" || missing != "" || port != 5432 || ssl {
		t.Errorf("host %q missing %q port %d ssl %v", host, missing, port, ssl)
	}
	if !o.Has("n") || o.Has("missing") {
		t.Error("Has: a null field is present, an absent one is not")
	}
	if _, ok := o.Raw("n"); ok {
		t.Error("Raw: a null field reads as absent")
	}
	for _, c := range []struct{ value, want string }{
		{`[]`, "not a JSON object"},
		{`{"host": 5}`, `"host" must be a string`},
		{`{"port": "x"}`, `"port" must be a number between 1 and 65535`},
		{`{"port": 70000}`, `"port" must be a number between 1 and 65535`},
		{`{"ssl": "maybe"}`, `"ssl" must be true or false`},
	} {
		o, err := Parse(c.value)
		if err == nil {
			var s string
			var p int
			var b bool
			err = o.String("host", &s)
			if err == nil {
				err = o.Port("port", &p)
			}
			if err == nil {
				err = o.Bool("ssl", &b)
			}
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.value, err, c.want)
		}
	}
}

func TestWithKeepsEveryOtherField(t *testing.T) {
	o, err := Parse(`{"username":"a","password":"old","limits":{"rps":1.50},"note":"x<y"}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := o.With(map[string]string{"username": "b", "password": "n&w<pw>"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"username":"b"`, `"password":"n&w<pw>"`, `"limits":{"rps":1.50}`, `"note":"x<y"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %s", got, want)
		}
	}
	if strings.Contains(got, "old") {
		t.Errorf("the old password is still in %s", got)
	}
}
