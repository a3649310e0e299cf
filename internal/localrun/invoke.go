// Package localrun does locally what AWS Secrets Manager does when it rotates
// a secret: it opens a rotation (the AWSPENDING placeholder of RotateSecret),
// then invokes a rotation function for each step, in order, through the
// Lambda runtime API, retrying a failed step. cmd/rotate, the tests and the
// benchmark use it.
package localrun

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
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

// HTTPError is an invoke answered with an HTTP status other than 2xx: the
// function did not run, or did not answer (the runtime interface emulator
// answers 502 with an empty body when the function cannot start).
type HTTPError struct {
	URL    string
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("invoke %s: HTTP %d", e.URL, e.Status)
	if e.Body != "" {
		return msg + ": " + e.Body
	}
	return msg + " with an empty body (the function did not answer: the cause is in the output of whatever runs it)"
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
		return &HTTPError{URL: u.URL, Status: resp.StatusCode, Body: string(bytes.TrimSpace(out))}
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
	out  *tail
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

// StartRIE checks the bootstrap (it must be an executable this machine can
// run), starts the emulator on free loopback ports and waits until it
// accepts connections.
func StartRIE(ctx context.Context, opt RIEOptions) (*RIE, error) {
	if opt.Binary == "" {
		return nil, errors.New("start RIE: no aws-lambda-rie binary given (set RIE_BIN or run scripts/testbed.sh up)")
	}
	if err := CheckBootstrap(opt.Bootstrap); err != nil {
		return nil, err
	}
	// The ports are free when chosen, but another process can bind one
	// before the emulator does: an emulator that exits while starting is
	// started again on other ports.
	var err error
	for range 3 {
		var r *RIE
		if r, err = startRIE(ctx, opt); !errors.Is(err, errRIEExited) {
			return r, err
		}
	}
	return nil, err
}

var errRIEExited = errors.New("emulator exited")

func startRIE(ctx context.Context, opt RIEOptions) (*RIE, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, fmt.Errorf("start RIE: %w", err)
	}
	invokeAddr, runtimeAddr := addrs[0], addrs[1]
	cmd := exec.Command(opt.Binary,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		opt.Bootstrap)
	cmd.Env = append(os.Environ(), opt.Env...)
	out := &tail{}
	var w io.Writer = out
	if opt.Output != nil {
		w = io.MultiWriter(opt.Output, out)
	}
	cmd.Stdout, cmd.Stderr = w, w
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
		out:  out,
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
			return nil, fmt.Errorf("start RIE: %w: %v: %s", errRIEExited, err, lastLines(out.since(0), 5))
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

// Invoke delivers ev to the function. When the emulator answers that the
// function did not run (HTTP 5xx with no function error), the cause is read
// from the emulator's output and returned as a *StartError.
func (r *RIE) Invoke(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	mark := r.out.written()
	err := r.URLInvoker.Invoke(ctx, ev)
	var fe *FunctionError
	var he *HTTPError
	if err == nil || errors.As(err, &fe) || (errors.As(err, &he) && he.Status < 500) || ctx.Err() != nil {
		return err
	}
	// The emulator writes its error line about when it answers: give it a
	// moment to appear (up to 2 s: on a loaded machine the line can trail
	// the answer by more than half a second).
	for range 100 {
		if se := ParseStartError(r.out.since(mark)); se != nil {
			se.Err = err
			return se
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// StartError reports a function that the runtime interface emulator could
// not run: Cause is the emulator's own reason (exec format error, the
// process exited with a status ...) and Output the last lines the function
// printed before that.
type StartError struct {
	Cause  string
	Output []string
	Err    error // what the invoke returned
}

func (e *StartError) Error() string {
	msg := "the function did not run: " + e.Cause
	if len(e.Output) > 0 {
		msg += "; its last output: " + strings.Join(e.Output, " | ")
	}
	return msg
}

// Unwrap returns the invoke's error.
func (e *StartError) Unwrap() error { return e.Err }

// The emulator's lines that give the reason a function did not run.
var (
	// The emulator logs a line's fields in any order (error= before or
	// after InvokeID=).
	invokeFailedRE = regexp.MustCompile(`\(rapid\) Invoke failed (?:InvokeID=\S* )?error=(.*?)(?: InvokeID=\S*)?$`)
	initFailedRE   = regexp.MustCompile(`\(rapid\) Init failed (?:InvokeID=\S* )?error=(.*?)(?: InvokeID=\S*)?$`)
	rieLineRE      = regexp.MustCompile(`^\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2},\d+ \[`)
)

// ParseStartError finds, in the emulator's output of one invoke, why the
// function did not run.
func ParseStartError(out string) *StartError {
	var cause string
	var own []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case rieLineRE.MatchString(line):
			if m := invokeFailedRE.FindStringSubmatch(line); m != nil {
				cause = m[1]
			} else if m := initFailedRE.FindStringSubmatch(line); m != nil && cause == "" {
				cause = m[1]
			}
		case strings.HasPrefix(line, "START RequestId:"), strings.HasPrefix(line, "END RequestId:"), strings.HasPrefix(line, "REPORT RequestId:"):
		default:
			own = append(own, line)
		}
	}
	if cause == "" {
		return nil
	}
	if len(own) > 5 {
		own = own[len(own)-5:]
	}
	return &StartError{Cause: cause, Output: own}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// tail keeps the last part of the emulator's output, and counts what was
// written, so that the output of one invoke can be read back.
type tail struct {
	mu    sync.Mutex
	buf   []byte
	total int64
}

const tailSize = 256 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailSize:]...)
	}
	t.total += int64(len(p))
	return len(p), nil
}

func (t *tail) written() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// since returns what was written after the first mark bytes, as far as it
// is still kept.
func (t *tail) since(mark int64) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	start := int64(len(t.buf)) - (t.total - mark)
	if start < 0 {
		start = 0
	}
	return string(t.buf[start:])
}

// CheckBootstrap makes sure path is a file this machine can execute: it
// exists, is executable, and, when it is an ELF binary, is built for this
// machine's architecture. A Lambda build (linux/arm64) run on an x86_64
// machine would otherwise fail inside the emulator with "exec format error"
// and an empty HTTP 502.
func CheckBootstrap(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("bootstrap %s is a directory (give the executable, or build it with BuildBootstrap)", path)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("bootstrap %s is not executable", path)
	}
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil // not ELF: a script, which the kernel runs with its interpreter
		}
		return fmt.Errorf("bootstrap %s: %w", path, err)
	}
	defer f.Close()
	arch, ok := elfArch[f.Machine]
	if !ok {
		arch = f.Machine.String()
	}
	if arch != runtime.GOARCH {
		return fmt.Errorf("bootstrap %s is built for linux/%s, but this machine runs %s/%s: the runtime interface emulator cannot start it (exec format error); build it for this machine (make build-local, or pass the function's package directory, e.g. -bootstrap ./functions/generic)",
			path, arch, runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

var elfArch = map[elf.Machine]string{
	elf.EM_X86_64:  "amd64",
	elf.EM_AARCH64: "arm64",
	elf.EM_386:     "386",
	elf.EM_ARM:     "arm",
	elf.EM_RISCV:   "riscv64",
	elf.EM_PPC64:   "ppc64le",
	elf.EM_S390:    "s390x",
}

// BuildBootstrap builds the Go package dir (a functions/<name> directory)
// into outDir/bootstrap for this machine's architecture, with the flags of
// `make build`, so that the runtime interface emulator can run it.
func BuildBootstrap(ctx context.Context, dir, outDir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	out := filepath.Join(outDir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, ".")
	cmd.Dir = abs
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s for linux/%s: %w: %s", dir, runtime.GOARCH, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// PID is the emulator's process id; the bootstrap is in its process group.
func (r *RIE) PID() int { return r.cmd.Process.Pid }

// Close stops the emulator and the function. The emulator starts the
// bootstrap in a process group of its own, so its children are stopped by
// process id first.
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

// LambdaInvoker invokes a deployed function through the Lambda API
// (Invoke, RequestResponse), the way Secrets Manager does. rotationctl uses
// it to drive the steps of a rollback against AWS.
type LambdaInvoker struct {
	Client   *lambda.Client
	Function string // name or ARN
}

// Invoke calls the function and turns a function error into a
// *FunctionError.
func (l *LambdaInvoker) Invoke(ctx context.Context, ev events.SecretsManagerSecretRotationEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	out, err := l.Client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(l.Function), Payload: body})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", l.Function, err)
	}
	if out.FunctionError == nil {
		return nil
	}
	var fe FunctionError
	if json.Unmarshal(out.Payload, &fe) != nil || (fe.Type == "" && fe.Message == "") {
		fe = FunctionError{Type: aws.ToString(out.FunctionError), Message: string(bytes.TrimSpace(out.Payload))}
	}
	return &fe
}
