package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// LogTo sends the messages the go-redis library writes itself (a failed
// dial, say), which it would print on standard error as plain text, to l:
// every line the function writes stays one JSON object. The library's
// logger is process-wide, hence a call from main, before any connection.
// Its messages name addresses and errors, never a command's arguments.
func LogTo(l *slog.Logger) {
	goredis.SetLogger(libraryLogger{l})
}

type libraryLogger struct{ l *slog.Logger }

func (g libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	g.l.LogAttrs(ctx, slog.LevelWarn, "redis client library",
		slog.String("target", "redis"), slog.String("detail", strings.TrimSpace(fmt.Sprintf(format, v...))))
}
