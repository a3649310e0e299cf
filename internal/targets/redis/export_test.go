package redis

import goredis "github.com/redis/go-redis/v9"

// DriverWithHook is the driver with a hook on every session's commands,
// logins included: the crash tests kill the function after each.
func DriverWithHook(hook goredis.Hook) Driver { return Driver{hook: hook} }
