// Command rotationctl operates the rotations of AWS Secrets Manager secrets:
// it shows where each rotation stands, rotates a secret now, ends a stuck
// rotation and rolls a secret back through its rotation function.
//
//	rotationctl status   [-prefix P] [-json]       the rotation state of every secret
//	rotationctl rotate   SECRET [-bootstrap F]     rotate now and follow each step
//	rotationctl cancel   SECRET                    end a stuck rotation, keeping every value
//	rotationctl rollback SECRET [-to VERSION]      make an older value current, through the function
//
// Each subcommand takes -h. AWS settings come from the SDK's standard
// configuration (credentials chain, AWS_REGION, AWS_PROFILE); the local test
// bed differs only by AWS_ENDPOINT_URL. Values are never printed: a version
// is shown by a short SHA-256 fingerprint of its value.
//
// Install with
//
//	go install github.com/secrets-rotation/secrets-rotation/cmd/rotationctl@latest
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, io cli, args []string) error
}

var commands = []command{
	{"status", "[-prefix P] [-json]", "show the rotation state of every secret", runStatus},
	{"rotate", "SECRET [-bootstrap F | -invoke-url U]", "rotate a secret now and follow each step", runRotate},
	{"cancel", "SECRET", "end a rotation in progress, keeping every value", runCancel},
	{"rollback", "SECRET [-to VERSION]", "make an older value current again, through the rotation function", runRollback},
}

// cli is where a subcommand writes.
type cli struct {
	stdout, stderr io.Writer
}

// errUsage is returned after a usage message was printed.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status: 0 success, 1
// failure or refusal, 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, cli{stdout, stderr}, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			return 2
		}
		fmt.Fprintf(stderr, "rotationctl %s: %v\n", c.name, err)
		return 1
	}
	fmt.Fprintf(stderr, "rotationctl: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `rotationctl operates the rotations of AWS Secrets Manager secrets.

Usage:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  rotationctl %-8s %-40s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprint(w, `
Run "rotationctl COMMAND -h" for a command's flags. AWS credentials, region
and endpoint come from the SDK's standard configuration (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL for a local emulator). Secret values are never
printed: versions are shown by a SHA-256 fingerprint of their value.
`)
}

// newFlags returns the flag set of a subcommand, whose -h prints its usage.
func newFlags(c cli, name, args, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: rotationctl %s %s\n\n%s\n\nFlags:\n", name, args, about)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags given before or after the positional arguments (Go's
// flag package stops at the first positional one) and returns those.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// oneSecret parses the flags of a subcommand that takes exactly one secret.
func oneSecret(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	if len(pos) != 1 {
		fmt.Fprintf(fs.Output(), "want one secret (name or ARN), got %d arguments\n", len(pos))
		fs.Usage()
		return "", errUsage
	}
	return pos[0], nil
}
