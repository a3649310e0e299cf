package mysql

import "testing"

func TestRegrant(t *testing.T) {
	from, to := grantee("app", "%"), grantee("app_clone", "%")
	cases := map[string]string{
		"GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABCDEF'":                "",
		"GRANT SELECT, INSERT ON `db`.* TO `app`@`%` WITH GRANT OPTION":                   "GRANT SELECT, INSERT ON `db`.* TO `app_clone`@`%` WITH GRANT OPTION",
		"GRANT RELOAD ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION": "GRANT RELOAD ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
		"GRANT SELECT (`c`) ON `db`.`t` TO `app`@`%`":                                     "GRANT SELECT (`c`) ON `db`.`t` TO `app_clone`@`%`",
		"GRANT `reader` TO `app`@`%` WITH ADMIN OPTION":                                   "GRANT `reader` TO `app_clone`@`%` WITH ADMIN OPTION",
	}
	for in, want := range cases {
		got, err := regrant(in, from, to)
		if err != nil || got != want {
			t.Errorf("regrant(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := regrant("GRANT SELECT ON *.* TO `other`@`%`", from, to); err == nil {
		t.Error("a line for another account was accepted")
	}
	if g := grantee("a`b", "%"); g != "`a``b`@`%`" {
		t.Errorf("grantee quoting: %s", g)
	}
}
