package dbtest

import (
	"context"
	"database/sql"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// ServerLog counts the logins a test server refused, from the server's
// own log file (scripts/db.sh writes its path into db.env: PostgreSQL logs
// "password authentication failed" as FATAL, MariaDB "Access denied" at
// log_warnings=2). It counts from the moment it was made.
type ServerLog struct {
	file   string
	offset int64
	line   func(user string) string
	refuse func(t testing.TB, user string) // a login the server refuses
}

// PGLog is the ServerLog of the test PostgreSQL.
func PGLog(t testing.TB) *ServerLog {
	t.Helper()
	st := Settings(t)
	return newServerLog(t, st["PG_LOG_FILE"],
		func(u string) string { return `password authentication failed for user "` + u + `"` },
		func(t testing.TB, user string) {
			cfg, err := pgx.ParseConfig("sslmode=disable")
			if err != nil {
				t.Fatal(err)
			}
			port, _ := strconv.Atoi(st["PG_PORT"])
			cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = st["PG_HOST"], uint16(port), "postgres", user, "wrong"
			cfg.Fallbacks = nil
			if c, err := pgx.ConnectConfig(context.Background(), cfg); err == nil {
				c.Close(context.Background())
				t.Fatalf("the marker user %s logged in", user)
			}
		})
}

// MyLog is the ServerLog of the test MariaDB.
func MyLog(t testing.TB) *ServerLog {
	t.Helper()
	st := Settings(t)
	return newServerLog(t, st["MYSQL_ERROR_LOG"],
		func(u string) string { return "Access denied for user '" + u + "'@" },
		func(t testing.TB, user string) {
			cfg := mysql.NewConfig()
			cfg.User, cfg.Passwd = user, "wrong"
			cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(st["MYSQL_HOST"], st["MYSQL_PORT"])
			cfg.Timeout, cfg.AllowNativePasswords = 5*time.Second, true
			c, err := mysql.NewConnector(cfg)
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(c)
			defer db.Close()
			if db.Ping() == nil {
				t.Fatalf("the marker user %s logged in", user)
			}
		})
}

func newServerLog(t testing.TB, file string, line func(string) string, refuse func(testing.TB, string)) *ServerLog {
	t.Helper()
	if file == "" {
		t.Fatalf("db.env names no server log file: %s", hint)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return &ServerLog{file: file, offset: fi.Size(), line: line, refuse: refuse}
}

// Refused returns how many logins of users the server refused since the
// ServerLog was made. It first makes one refused login of its own and
// waits until the server has logged it, so that every line before it is
// in the file and the count is known to see what the server logs.
func (l *ServerLog) Refused(t testing.TB, users ...string) int {
	t.Helper()
	marker := Name("marker")
	l.refuse(t, marker)
	for i := 0; ; i++ {
		b, err := os.ReadFile(l.file)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b[min(l.offset, int64(len(b))):])
		if strings.Contains(text, l.line(marker)) {
			n := 0
			for _, u := range users {
				n += strings.Count(text, l.line(u))
			}
			return n
		}
		if i == 200 {
			t.Fatalf("the server did not log the marker's refused login in %s", l.file)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
