package account

import (
	"errors"
	"fmt"
)

// ErrCannotLogIn is wrapped by a login error that the server gave because
// of the credentials: wrong password or unknown user.
var ErrCannotLogIn = errors.New("cannot log in")

// ErrCannotReach is wrapped by a login error that happened before the
// server judged the credentials: no route, refused, time-out, TLS failure.
var ErrCannotReach = errors.New("cannot reach")

// ConnError is a classified login failure, which drivers return from
// Connect. Its message names the user and endpoint, never a password.
type ConnError struct {
	Kind     error // ErrCannotLogIn or ErrCannotReach
	User     string
	Endpoint string
	Err      error
}

func (e *ConnError) Error() string {
	if e.Kind == ErrCannotLogIn {
		return fmt.Sprintf("cannot log in as %s at %s: %v", e.User, e.Endpoint, e.Err)
	}
	return fmt.Sprintf("cannot reach %s (as %s): %v", e.Endpoint, e.User, e.Err)
}

// Unwrap lets errors.Is match the kind and errors.As the cause.
func (e *ConnError) Unwrap() []error { return []error{e.Kind, e.Err} }
