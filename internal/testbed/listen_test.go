package testbed

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// socket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type socket struct {
	proto string
	addr  net.IP
	port  int
	state string
}

// procSockets returns the sockets of this network namespace by inode.
func procSockets(t *testing.T) map[string]socket {
	t.Helper()
	out := map[string]socket{}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open("/proc/net/" + proto)
		if err != nil {
			t.Fatalf("read /proc/net/%s: %v", proto, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			hostHex, portHex, _ := strings.Cut(fields[1], ":")
			ip, err := procIP(hostHex)
			if err != nil {
				t.Fatalf("/proc/net/%s: %v", proto, err)
			}
			port, _ := strconv.ParseInt(portHex, 16, 32)
			out[fields[9]] = socket{proto: proto, addr: ip, port: int(port), state: fields[3]}
		}
		f.Close()
	}
	return out
}

// procIP decodes an address of /proc/net/*: 32-bit words in the host's
// (little-endian) byte order.
func procIP(h string) (net.IP, error) {
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, fmt.Errorf("address %q", h)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), nil
}

// listening reports whether a socket accepts connections or datagrams from
// others: a TCP listener (state 0A), or an unconnected UDP socket (07) on a
// port below the ephemeral range (a client's UDP socket, a DNS lookup's
// say, gets a port from that range; a UDP server binds a chosen one).
func (s socket) listening() bool {
	if strings.HasPrefix(s.proto, "tcp") {
		return s.state == "0A"
	}
	return s.state == "07" && s.port < 32768
}

// bedProcesses returns, for each pid file the bed's servers wrote in
// .testbed/run, the process and all its descendants and group members.
func bedProcesses(t *testing.T) map[string][]int {
	t.Helper()
	run := filepath.Join(ModuleRoot(t), ".testbed", "run")
	files, _ := filepath.Glob(filepath.Join(run, "*.pid"))
	if len(files) == 0 {
		t.Fatalf("no server of the test bed is running (no pid file in %s): %s", run, Hint)
	}
	parent := map[int]int{}
	group := map[int]int{}
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		pid, _ := strconv.Atoi(strings.Fields(s[:i])[0])
		if len(fields) >= 3 {
			parent[pid], _ = strconv.Atoi(fields[1])
			group[pid], _ = strconv.Atoi(fields[2])
		}
	}
	out := map[string][]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		root, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		if _, ok := parent[root]; !ok {
			t.Fatalf("%s names process %d, which does not run: %s", f, root, Hint)
		}
		for pid := range parent {
			for p := pid; p > 1; p = parent[p] {
				if p == root || group[pid] == root {
					out[name] = append(out[name], pid)
					break
				}
			}
		}
		sort.Ints(out[name])
	}
	return out
}

// TestBedListensOnLoopbackOnly checks every socket that the bed's servers
// (and their child processes) accept on: each must be bound to a loopback
// address, on a port below 32768 (outside Linux's ephemeral range). Each
// server must have at least one listener, so the check cannot pass by
// finding nothing.
func TestBedListensOnLoopbackOnly(t *testing.T) {
	socks := procSockets(t)
	for name, pids := range bedProcesses(t) {
		listeners := 0
		for _, pid := range pids {
			fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
			for _, fd := range fds {
				link, err := os.Readlink(fd)
				if err != nil || !strings.HasPrefix(link, "socket:[") {
					continue
				}
				s, ok := socks[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]
				if !ok || !s.listening() {
					continue
				}
				listeners++
				if !s.addr.IsLoopback() {
					t.Errorf("%s (pid %d) listens on %s %s:%d, not on loopback", name, pid, s.proto, s.addr, s.port)
				}
				if s.port >= 32768 {
					t.Errorf("%s (pid %d) listens on port %d, in Linux's ephemeral range (32768-60999) or above", name, pid, s.port)
				}
				t.Logf("%s pid %d: %s %s:%d", name, pid, s.proto, s.addr, s.port)
			}
		}
		if listeners == 0 {
			t.Errorf("%s (processes %v) has no listening socket: is it the bed's server?", name, pids)
		}
	}
}

func TestProcIP(t *testing.T) {
	for h, want := range map[string]string{
		"0100007F":                         "127.0.0.1",
		"00000000":                         "0.0.0.0",
		"00000000000000000000000001000000": "::1",
		"0000000000000000FFFF00000100007F": "127.0.0.1",
		"0000000000000000FFFF00000A01A8C0": "192.168.1.10",
	} {
		ip, err := procIP(h)
		if err != nil || ip.String() != want {
			t.Errorf("procIP(%s) = %v, %v; want %s", h, ip, err, want)
		}
	}
}
