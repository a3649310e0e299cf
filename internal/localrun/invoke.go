// Package localrun does locally what AWS Secrets Manager does when it rotates
// a secret: it opens a rotation (the AWSPENDING placeholder of RotateSecret),
// then invokes a rotation function for each step, in order, through the
// Lambda runtime API, retrying a failed step. cmd/rotate, the tests and the
// benchmark use it.
package localrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Invoker delivers one rotation event to a rotation function.
type Invoker interface {
	Invoke(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error
}

// InvokerFunc adapts a function, such as (*rotation.Engine).Handle, to an
// Invoker.
type InvokerFunc func(context.Context, events.SecretsManagerSecretRotationEvent) error

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	return f(ctx, ev)
}

// FunctionError is the error a function returned, as the Lambda runtime API
// reports it.
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// URLInvoker invokes a function through an invoke URL of the Lambda API, such
// as the one of the runtime interface emulator.
type URLInvoker struct {
	URL    string
	Client *http.Client
}

// Invoke posts ev and turns a function error into a *FunctionError.
func (u *URLInvoker) Invoke(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", u.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := u.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", u.URL, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("invoke %s: read response: %w", u.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("invoke %s: HTTP %d: %s", u.URL, resp.StatusCode, bytes.TrimSpace(out))
	}
	var fe FunctionError
	if json.Unmarshal(out, &fe) == nil && (fe.Type != "" || fe.Message != "") {
		return &fe
	}
	if resp.Header.Get("X-Amz-Function-Error") != "" {
		return &FunctionError{Type: resp.Header.Get("X-Amz-Function-Error"), Message: string(bytes.TrimSpace(out))}
	}
	return nil
}

// RIE runs a function's bootstrap under the AWS Lambda Runtime Interface
// Emulator. The bootstrap starts at the first invoke, so a fresh RIE gives
// exactly one cold start.
type RIE struct {
	*URLInvoker
	cmd  *exec.Cmd
	done chan error
}

// RIEOptions say how to start the emulator.
type RIEOptions struct {
	// Binary is the aws-lambda-rie executable.
	Binary string
	// Bootstrap is the function's executable.
	Bootstrap string
	// Env is added to the process environment, which the emulator passes on
	// to the function (AWS_ENDPOINT_URL, credentials, function settings).
	Env []string
	// Output receives the function's and the emulator's output; nil discards it.
	Output io.Writer
}

// StartRIE starts the emulator on free loopback ports and waits until it
// accepts connections.
func StartRIE(ctx context.Context, opt RIEOptions) (*RIE, error) {
	if opt.Binary == "" {
		return nil, errors.New("start RIE: no aws-lambda-rie binary given (set RIE_BIN or run scripts/testbed.sh up)")
	}
	if _, err := os.Stat(opt.Bootstrap); err != nil {
		return nil, fmt.Errorf("start RIE: bootstrap: %w", err)
	}
	invokeAddr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("start RIE: %w", err)
	}
	runtimeAddr, err := freeAddr()
	if err != nil {
		return nil, fmt.Errorf("start RIE: %w", err)
	}
	cmd := exec.Command(opt.Binary,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		opt.Bootstrap)
	cmd.Env = append(os.Environ(), opt.Env...)
	out := opt.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that Close stops the bootstrap too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start RIE %s: %w", opt.Binary, err)
	}
	r := &RIE{
		URLInvoker: &URLInvoker{
			URL:    "http://" + invokeAddr + "/2015-03-31/functions/function/invocations",
			Client: &http.Client{Timeout: 5 * time.Minute},
		},
		cmd:  cmd,
		done: make(chan error, 1),
	}
	go func() { r.done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", invokeAddr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return r, nil
		}
		select {
		case err := <-r.done:
			return nil, fmt.Errorf("start RIE: emulator exited: %v", err)
		case <-ctx.Done():
			r.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("start RIE: %s did not listen within 10s", invokeAddr)
		}
	}
}

// PID is the emulator's process id; the bootstrap is in its process group.
func (r *RIE) PID() int { return r.cmd.Process.Pid }

// Close stops the emulator and the function. The emulator starts the
// bootstrap in a process group of its own, so it is stopped by name.
func (r *RIE) Close() error {
	for _, pid := range childPIDs(r.cmd.Process.Pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		return errors.New("RIE did not stop within 5s")
	}
	return nil
}

// BootstrapPeakRSS returns the peak resident memory (VmHWM, in KiB) of the
// function process that the emulator started.
func (r *RIE) BootstrapPeakRSS() (int, error) {
	for _, pid := range childPIDs(r.cmd.Process.Pid) {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				return strconv.Atoi(f[1])
			}
		}
	}
	return 0, errors.New("the function process is not running")
}

// childPIDs lists the processes whose parent is ppid.
func childPIDs(ppid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// The fields after the ")" that closes the command name: state ppid ...
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 && f[1] == strconv.Itoa(ppid) {
			if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, pid)
			}
		}
	}
	return out
}
