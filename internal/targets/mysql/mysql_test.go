package mysql

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

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

func TestDefaultRole(t *testing.T) {
	acct := grantee("app", "%")
	for line, want := range map[string]string{
		"SET DEFAULT ROLE `reader` FOR `app`@`%`":  "reader",
		"SET DEFAULT ROLE `we``ird` FOR `app`@`%`": "we`ird",
	} {
		role, ok, err := defaultRole(line, acct)
		if !ok || err != nil || role != want {
			t.Errorf("defaultRole(%q) = %q, %v, %v; want %q", line, role, ok, err, want)
		}
	}
	if _, ok, _ := defaultRole("GRANT `reader` TO `app`@`%`", acct); ok {
		t.Error("a GRANT line read as a default role")
	}
	for _, bad := range []string{"SET DEFAULT ROLE `r` FOR `other`@`%`", "SET DEFAULT ROLE `a`,`b` FOR `app`@`%`", "SET DEFAULT ROLE r FOR `app`@`%`"} {
		if _, ok, err := defaultRole(bad, acct); !ok || err == nil {
			t.Errorf("defaultRole(%q) accepted", bad)
		}
	}
}

func TestPluginOf(t *testing.T) {
	acct := grantee("app", "%")
	for line, want := range map[string]string{
		"CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4'":         pluginNative,
		"CREATE USER `app`@`%` IDENTIFIED VIA ed25519 USING 'KfGcY9Q7aV8eOY4F/c1H7zEfnIeC+9k0vzOB/R0raII'": pluginEd25519,
		"CREATE USER `app`@`%` IDENTIFIED VIA mysql_native_password USING '*AB' REQUIRE SSL":               pluginNative,
		"CREATE USER `app`@`%`":                                 pluginNative,
		"CREATE USER `app`@`%` IDENTIFIED VIA unix_socket":      "unix_socket",
		"CREATE USER `app`@`%` PASSWORD EXPIRE INTERVAL 90 DAY": pluginNative,
	} {
		if got, err := pluginOf(line, acct); err != nil || got != want {
			t.Errorf("pluginOf(%q) = %q, %v; want %q", line, got, err, want)
		}
	}
	for _, bad := range []string{
		"CREATE USER `app`@`%` IDENTIFIED VIA unix_socket OR mysql_native_password USING '*AB'",
		"CREATE USER `other`@`%` IDENTIFIED VIA ed25519 USING 'x'",
	} {
		_, err := pluginOf(bad, acct)
		if err == nil {
			t.Errorf("pluginOf(%q) accepted", bad)
		} else if strings.Contains(err.Error(), "*AB") {
			t.Errorf("error quotes the hash: %v", err)
		}
	}
}

func TestWithhold(t *testing.T) {
	hash := nativeHash("pending-password-123")
	raw := &mysql.MySQLError{Number: 1064, SQLState: [5]byte{'4', '2', '0', '0', '0'},
		Message: "You have an error in your SQL syntax; check the manual near '= '" + hash[:12] + "' at line 1"}
	err := withhold(raw, "pending-password-123", hash)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1064 || strings.Contains(err.Error(), hash[:12]) {
		t.Fatalf("withhold kept the hash or lost the number: %v", err)
	}
	other := &mysql.MySQLError{Number: 1227, Message: "Access denied; you need (at least one of) the CREATE USER privilege(s)"}
	if withhold(other, "pending-password-123", hash) != other {
		t.Fatal("an error quoting nothing was changed")
	}
	if err := withhold(errors.New("bad "+"password-12"), "pending-password-123"); strings.Contains(err.Error(), "password-12") {
		t.Fatalf("a plain error quoting the password kept it: %v", err)
	}
}
