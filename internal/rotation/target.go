package rotation

import (
	"context"
	"log/slog"
)

// Target says what the four steps of a rotation mean for one kind of target
// system: a database, a key service, a certificate authority, or nothing at
// all for a random API key. The engine runs the protocol around it: it checks
// the token, reads and writes versions and moves staging labels. A target
// never touches staging labels.
//
// Every method may be called again after a failure or a crash, with the same
// request, and must then converge on the same result.
type Target interface {
	// Create derives the new secret value from the current one. It is called
	// only while the pending version has no value. If the function dies after
	// Create returned and before the value was stored, Create runs again with
	// a new chance: anything it made outside Secrets Manager must then be found
	// and reused or removed, never leaked.
	Create(ctx context.Context, req *CreateRequest) (CreateResponse, error)

	// Set makes the target system accept the pending value. If the target
	// already accepts it, Set succeeds without changing anything.
	Set(ctx context.Context, req *StepRequest) error

	// Test proves that the pending value works against the target, with the
	// least privilege that proves it.
	Test(ctx context.Context, req *StepRequest) error
}

// Finisher is implemented by a target that has work to do once the pending
// version has become AWSCURRENT (retiring an old key, for example). Finish
// runs right after the label moved, with req.Replaced naming the version
// that carried AWSCURRENT before. When Finish fails, finishSecret fails and
// Secrets Manager retries it; the label has moved by then, and the retry
// runs Finish again (and nothing else). Finish must therefore be
// idempotent: run twice, or killed and run again, it ends where one run
// ends.
type Finisher interface {
	Finish(ctx context.Context, req *StepRequest) error
}

// Idler is implemented by a target whose Set or Test has nothing to do in
// its configuration (generic without a verification endpoint, say). The
// engine then makes no call at all for that step: a step that changes
// nothing and reads nothing has nothing to check either.
type Idler interface {
	// Idle reports whether step (StepSet or StepTest) does nothing.
	Idle(step string) bool
}

// Secret names the secret and the rotation a request belongs to.
type Secret struct {
	ARN  string
	Name string
	// Token is the client request token of the rotation: the version id of
	// the pending version.
	Token string
}

// Version is one stored version of a secret.
type Version struct {
	ID    string
	Value string
}

// CreateRequest is the input of Target.Create.
type CreateRequest struct {
	Secret  Secret
	Current Version
	// Versions reads other versions (AWSPREVIOUS, any version by id) on demand.
	Versions *Versions
	// Log carries the secret, step and token as attributes. Never log a
	// secret value with it.
	Log *slog.Logger
}

// CreateResponse is the output of Target.Create.
type CreateResponse struct {
	// Value is the new secret value, stored as the pending version.
	Value string
}

// StepRequest is the input of Set, Test and Finish.
type StepRequest struct {
	Secret   Secret
	Versions *Versions
	Log      *slog.Logger
	// Replaced is set for Finish only: the id of the version that carried
	// AWSCURRENT before this rotation moved the label (AWSPREVIOUS now), or
	// empty when there was none.
	Replaced string
}

// Funcs adapts plain functions to a Target, in the way http.HandlerFunc does:
// a target with nothing to set or test leaves those fields nil.
type Funcs struct {
	CreateFunc func(context.Context, *CreateRequest) (CreateResponse, error)
	SetFunc    func(context.Context, *StepRequest) error
	TestFunc   func(context.Context, *StepRequest) error
}

// Create calls f.CreateFunc.
func (f Funcs) Create(ctx context.Context, req *CreateRequest) (CreateResponse, error) {
	return f.CreateFunc(ctx, req)
}

// Set calls f.SetFunc, if any.
func (f Funcs) Set(ctx context.Context, req *StepRequest) error {
	if f.SetFunc == nil {
		return nil
	}
	return f.SetFunc(ctx, req)
}

// Idle reports whether the step has no function to run.
func (f Funcs) Idle(step string) bool {
	switch step {
	case StepSet:
		return f.SetFunc == nil
	case StepTest:
		return f.TestFunc == nil
	}
	return false
}

// Test calls f.TestFunc, if any.
func (f Funcs) Test(ctx context.Context, req *StepRequest) error {
	if f.TestFunc == nil {
		return nil
	}
	return f.TestFunc(ctx, req)
}
