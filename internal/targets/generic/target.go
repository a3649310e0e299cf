package generic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/secrets-rotation/secrets-rotation/internal/password"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// maxDraws bounds the draws Create makes to get a value different from the
// current one. Only a tiny policy (one digit, say) ever needs a second draw;
// with two possible values, 64 draws all fail with probability 2^-64, so
// the error means that only one value is possible.
const maxDraws = 64

// Target rotates a secret that no other system has to accept.
type Target struct {
	cfg    Config
	verify func(ctx context.Context, value string) error
}

var (
	_ rotation.Target = (*Target)(nil)
	_ rotation.Idler  = (*Target)(nil)
)

// New returns a Target for cfg, which should come from ConfigFromEnv.
func New(cfg Config) *Target {
	t := &Target{cfg: cfg}
	if cfg.VerifyURL != nil {
		v, err := newVerifier(cfg)
		if err != nil {
			// New has no error result; a Config built without
			// ConfigFromEnv can still name a CA file that fails to load.
			// Fail every test step instead, which blocks the rotation
			// before the pending value becomes current.
			t.verify = func(context.Context, string) error { return err }
		} else {
			t.verify = v.verify
		}
	}
	return t
}

// Create returns the current value with a new secret in place of the old one:
// the whole value, or the SECRET_FIELD member of a JSON object.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	cur := req.Current.Value
	old := cur
	var ref fieldRef
	if t.cfg.Field != "" {
		var err error
		ref, err = findField(cur, t.cfg.Field)
		if errors.Is(err, errNotObject) {
			return rotation.CreateResponse{}, fmt.Errorf("secret is not a JSON object but SECRET_FIELD=%s is configured", t.cfg.Field)
		}
		if err != nil {
			return rotation.CreateResponse{}, err
		}
		if old, _, err = ref.value(); err != nil {
			return rotation.CreateResponse{}, err
		}
	} else if isJSONObject(cur) {
		return rotation.CreateResponse{}, errors.New("secret is a JSON object and SECRET_FIELD is not set: set SECRET_FIELD to the field to rotate, so the other fields are kept")
	}

	value, err := t.generateNot(old)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	if t.cfg.Field != "" {
		value = ref.with(value)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "new secret value generated",
		slog.String("kind", string(t.cfg.Kind)),
		slog.String("secret_field", t.cfg.Field),
		slog.Bool("field_added", t.cfg.Field != "" && !ref.found))
	return rotation.CreateResponse{Value: value}, nil
}

// generateNot draws a value other than old: a rotation that stores the same
// secret again would report success while rotating nothing.
func (t *Target) generateNot(old string) (string, error) {
	for range maxDraws {
		v, err := t.generate()
		if err != nil {
			return "", err
		}
		if v != old {
			return v, nil
		}
	}
	return "", fmt.Errorf("%d draws all equalled the current value: the %s configuration allows too few values", maxDraws, t.cfg.Kind)
}

func (t *Target) generate() (string, error) {
	switch t.cfg.Kind {
	case KindPassword:
		v, err := t.cfg.Password.Generate()
		if err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		return v, nil
	case KindAPIKey, KindSigningKey:
		b, err := password.RandomBytes(t.cfg.KeyBytes)
		if err != nil {
			return "", fmt.Errorf("generate %s: %w", t.cfg.Kind, err)
		}
		v, err := password.EncodeKey(b, t.cfg.KeyEncoding)
		if err != nil {
			return "", fmt.Errorf("generate %s: %w", t.cfg.Kind, err)
		}
		return t.cfg.KeyPrefix + v, nil
	}
	return "", fmt.Errorf("unknown secret kind %q", t.cfg.Kind)
}

// Set does nothing: no system has to be told about the new value.
func (t *Target) Set(context.Context, *rotation.StepRequest) error { return nil }

// Idle implements rotation.Idler: setSecret never has anything to do, and
// testSecret has nothing to do without VERIFY_URL, so the engine makes no
// call for them.
func (t *Target) Idle(step string) bool {
	switch step {
	case rotation.StepSet:
		return true
	case rotation.StepTest:
		return t.verify == nil
	}
	return false
}

// Test calls VERIFY_URL with the pending value. Without VERIFY_URL it does
// nothing and reads nothing: Create generated the value and checked its
// shape before it was stored, and there is no system to test it against.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	if t.verify == nil {
		return nil
	}
	if req.Versions == nil {
		return errors.New("test: request has no versions to read the pending value from")
	}
	pending, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	if err := t.verifyPending(ctx, pending.Value); err != nil {
		return err
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "pending value accepted by the verification endpoint",
		slog.String("verify_host", t.cfg.VerifyURL.Host))
	return nil
}

// verifyPending extracts the secret from the pending version's value and
// verifies it.
func (t *Target) verifyPending(ctx context.Context, pending string) error {
	value := pending
	if t.cfg.Field != "" {
		ref, err := findField(pending, t.cfg.Field)
		if errors.Is(err, errNotObject) {
			return fmt.Errorf("pending secret is not a JSON object but SECRET_FIELD=%s is configured", t.cfg.Field)
		}
		if err != nil {
			return fmt.Errorf("pending secret: %w", err)
		}
		v, ok, err := ref.value()
		if err != nil {
			return fmt.Errorf("pending secret: %w", err)
		}
		if !ok {
			return fmt.Errorf("pending secret has no field %q", t.cfg.Field)
		}
		value = v
	}
	return t.verify(ctx, value)
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
