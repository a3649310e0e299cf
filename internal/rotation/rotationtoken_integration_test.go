package rotation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/secrets-rotation/secrets-rotation/internal/localrun"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/testbed"
)

// sentRequests records the body of every request our own Secrets Manager
// client serializes, by operation name: it observes the real client talking
// to the emulator, it fakes nothing.
type sentRequests struct {
	mu     sync.Mutex
	bodies map[string][][]byte
}

func (s *sentRequests) middleware(stack *middleware.Stack) error {
	// After the operation's serializer, so the body is the one sent.
	return stack.Serialize.Add(middleware.SerializeMiddlewareFunc("recordRequestBody",
		func(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok && req.GetStream() != nil {
				b, err := io.ReadAll(req.GetStream())
				if err != nil {
					return middleware.SerializeOutput{}, middleware.Metadata{}, err
				}
				if in.Request, err = req.SetStream(bytes.NewReader(b)); err != nil {
					return middleware.SerializeOutput{}, middleware.Metadata{}, err
				}
				s.mu.Lock()
				s.bodies[middleware.GetOperationName(ctx)] = append(s.bodies[middleware.GetOperationName(ctx)], b)
				s.mu.Unlock()
			}
			return next.HandleSerialize(ctx, in)
		}), middleware.After)
}

// putSecretValueBodies returns the PutSecretValue requests sent, decoded.
func (s *sentRequests) putSecretValueBodies(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, b := range s.bodies["PutSecretValue"] {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("PutSecretValue body is not JSON: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// TestRotationTokenReachesPutSecretValue: the RotationToken that Secrets
// Manager puts in the event (the wire form, decoded as lambda.Start
// decodes it) is passed on in createSecret's PutSecretValue, next to the
// version's ClientRequestToken and the AWSPENDING stage; an event without
// one sends none.
func TestRotationTokenReachesPutSecretValue(t *testing.T) {
	ctx := context.Background()
	awsCfg := testbed.AWSConfig(t)
	em := localrun.NewEmulator(awsCfg)
	for _, rotationToken := range []string{"d2f0c8b4-rotation-token-" + localrun.NewToken()[:8], ""} {
		sent := &sentRequests{bodies: map[string][][]byte{}}
		api := secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
			o.APIOptions = append(o.APIOptions, sent.middleware)
		})
		target := rotation.Funcs{CreateFunc: func(_ context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
			return rotation.CreateResponse{Value: req.Current.Value + "-next"}, nil
		}}
		engine := rotation.New(api, target, rotation.Options{TargetType: "token-test", Logger: slog.New(slog.DiscardHandler)})

		arn := testbed.CreateSecret(t, em, "first")
		token := localrun.NewToken()
		if _, err := em.OpenRotation(ctx, arn, token); err != nil {
			t.Fatal(err)
		}
		wire := map[string]string{"Step": rotation.StepCreate, "SecretId": arn, "ClientRequestToken": token}
		if rotationToken != "" {
			wire["RotationToken"] = rotationToken
		}
		raw, _ := json.Marshal(wire)
		var ev events.SecretsManagerSecretRotationEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if err := engine.Handle(ctx, ev); err != nil {
			t.Fatalf("createSecret: %v", err)
		}

		puts := sent.putSecretValueBodies(t)
		if len(puts) != 1 {
			t.Fatalf("rotation token %q: %d PutSecretValue requests sent, want 1", rotationToken, len(puts))
		}
		put := puts[0]
		got, present := put["RotationToken"]
		switch {
		case rotationToken != "" && got != rotationToken:
			t.Errorf("PutSecretValue sent RotationToken %v, want the event's %q", got, rotationToken)
		case rotationToken == "" && present:
			t.Errorf("PutSecretValue sent RotationToken %v for an event without one", got)
		}
		stages, _ := put["VersionStages"].([]any)
		if put["ClientRequestToken"] != token || put["SecretId"] != arn || !slices.Equal(stages, []any{"AWSPENDING"}) {
			t.Errorf("PutSecretValue sent ClientRequestToken %v, SecretId %v, VersionStages %v; want %s, %s, [AWSPENDING]",
				put["ClientRequestToken"], put["SecretId"], put["VersionStages"], token, arn)
		}
		if v := testbed.ValueOf(t, em, arn, token); v != "first-next" {
			t.Errorf("the emulator holds %q as the pending version, want the value sent", v)
		}
	}
}
