// Package grace holds the one definition of the grace period that the key
// rotation functions (datakey, jwtkeys) give retired keys: a key retired at
// time r is carried into new secret versions created before r+period.
package grace

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits of GRACE_PERIOD. At least an hour, so that a key is never dropped
// by the rotation right after the one that retired it; at most ten years.
const (
	Min = time.Hour
	Max = 3650 * 24 * time.Hour
)

// MaxRetired bounds the retired keys a version carries, so that the secret
// stays far below the 64 KiB limit of a SecretString whatever the schedule.
const MaxRetired = 32

// FromEnv reads the variable name as a grace period: a Go duration (36h) or
// a whole number of days (90d). An empty value gives def.
func FromEnv(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	s := strings.TrimSpace(getenv(name))
	if s == "" {
		return def, nil
	}
	d, err := parse(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a duration such as 90d or 36h", name, s)
	}
	if d < Min || d > Max {
		return 0, fmt.Errorf("%s=%q must be between 1h and 3650d", name, s)
	}
	return d, nil
}

func parse(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("bad day count")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Format writes d the way FromEnv reads it, in days when it is whole days.
func Format(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// Keep reports whether a key retired at retired is still within period at now.
func Keep(retired, now time.Time, period time.Duration) bool {
	return now.Before(retired.Add(period))
}
