package localrun

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// The ports the tools pick for the servers they start (the runtime
// interface emulator, a delaying proxy): loopback only, and below 32768,
// because Linux hands out 32768-60999 to outgoing connections, which could
// take a port between the check that it is free and the server's bind. The
// test bed's fixed ports (scripts/) all lie below dynamicPortLow.
const (
	dynamicPortLow  = 29000
	dynamicPortHigh = 32000
)

// ListenLoopback listens on 127.0.0.1 at a free port in the dynamic range.
func ListenLoopback() (net.Listener, error) {
	start := dynamicPortLow + rand.IntN(dynamicPortHigh-dynamicPortLow)
	var lastErr error
	for i := range dynamicPortHigh - dynamicPortLow {
		port := dynamicPortLow + (start-dynamicPortLow+i)%(dynamicPortHigh-dynamicPortLow)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			return l, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = errors.New("empty range")
	}
	return nil, fmt.Errorf("no free loopback port in %d-%d: %w", dynamicPortLow, dynamicPortHigh-1, lastErr)
}

// FreeAddr returns a loopback address that was free a moment ago, for a
// server in another process to bind.
func FreeAddr() (string, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// freeAddrs returns n distinct loopback addresses that were free a moment
// ago: all are held at once while they are chosen.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := ListenLoopback()
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}
