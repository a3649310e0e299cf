// Package secretstore gives typed access to the versions and staging labels of
// one AWS Secrets Manager secret: the few calls the rotation protocol needs,
// each made with an explicit version id or stage so that no emulator or
// eventually consistent default can hand back the wrong version.
package secretstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// The staging labels of the rotation protocol.
const (
	StageCurrent  = "AWSCURRENT"
	StagePending  = "AWSPENDING"
	StagePrevious = "AWSPREVIOUS"
)

// API is the part of the Secrets Manager client that the store uses;
// *secretsmanager.Client satisfies it.
type API interface {
	DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(context.Context, *secretsmanager.UpdateSecretVersionStageInput, ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
}

// ErrNoValue reports that a version exists but holds no value yet, as the
// AWSPENDING placeholder that RotateSecret creates.
var ErrNoValue = errors.New("version has no value")

// ErrBinary reports a secret stored as SecretBinary; rotation works on
// SecretString values only.
var ErrBinary = errors.New("secret is stored as SecretBinary; only SecretString secrets can be rotated")

// Store reads and writes the versions of secrets.
type Store struct {
	api   API
	calls atomic.Int64
}

// Calls returns how many Secrets Manager calls the store has made so far.
func (s *Store) Calls() int64 { return s.calls.Load() }

// New returns a Store over api.
func New(api API) *Store { return &Store{api: api} }

// Metadata is what DescribeSecret says about a secret.
type Metadata struct {
	ARN  string
	Name string
	// RotationEnabled is nil when the service did not say.
	RotationEnabled *bool
	// Stages maps the id of each version that carries a staging label to
	// its labels. Deprecated versions (no label) are left out, as AWS does.
	Stages map[string][]string
}

// VersionWithStage returns the id of the version that carries stage.
func (m Metadata) VersionWithStage(stage string) (string, bool) {
	for id, stages := range m.Stages {
		if slices.Contains(stages, stage) {
			return id, true
		}
	}
	return "", false
}

// HasStage reports whether version carries stage.
func (m Metadata) HasStage(version, stage string) bool {
	return slices.Contains(m.Stages[version], stage)
}

// Describe returns the metadata of the secret named by id (an ARN or a name).
func (s *Store) Describe(ctx context.Context, id string) (Metadata, error) {
	out, err := s.count().DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	if err != nil {
		return Metadata{}, fmt.Errorf("describe secret %s: %w", id, err)
	}
	// AWS lists only the versions that carry a label; a version without one
	// is deprecated, and Secrets Manager may delete it at any time. moto
	// lists those too, with no labels: drop them, so that every caller sees
	// what AWS answers and no target reads (or counts on) a deprecated one.
	stages := make(map[string][]string, len(out.VersionIdsToStages))
	for id, labels := range out.VersionIdsToStages {
		if len(labels) > 0 {
			stages[id] = labels
		}
	}
	return Metadata{
		ARN:             aws.ToString(out.ARN),
		Name:            aws.ToString(out.Name),
		RotationEnabled: out.RotationEnabled,
		Stages:          stages,
	}, nil
}

// Version is one version of a secret as GetSecretValue returns it: its
// value and the staging labels it carried at that moment.
type Version struct {
	ARN    string
	Name   string
	ID     string
	Value  string
	Stages []string
}

// HasStage reports whether the version carried stage when it was read.
func (v Version) HasStage(stage string) bool { return slices.Contains(v.Stages, stage) }

// Value returns the SecretString of the version versionID. A version that
// exists without a value gives ErrNoValue.
func (s *Store) Value(ctx context.Context, arn, versionID string) (string, error) {
	v, err := s.Read(ctx, arn, versionID, "")
	return v.Value, err
}

// Read returns the version of secret id (an ARN or a name) named by
// versionID, by stage, or by both (then they must name the same version).
// A version that does not exist or holds no value gives ErrNoValue: the
// service answers both with ResourceNotFoundException.
func (s *Store) Read(ctx context.Context, id, versionID, stage string) (Version, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	what := "version " + versionID
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
		what = stage
		if versionID != "" {
			what = stage + " version " + versionID
		}
	}
	out, err := s.count().GetSecretValue(ctx, in)
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return Version{}, fmt.Errorf("read %s of %s: %w", what, id, ErrNoValue)
		}
		return Version{}, fmt.Errorf("read %s of %s: %w", what, id, err)
	}
	v := Version{
		ARN:    aws.ToString(out.ARN),
		Name:   aws.ToString(out.Name),
		ID:     aws.ToString(out.VersionId),
		Stages: out.VersionStages,
	}
	if out.SecretString == nil {
		if out.SecretBinary != nil {
			return Version{}, fmt.Errorf("read %s of %s: %w", what, id, ErrBinary)
		}
		return Version{}, fmt.Errorf("read %s of %s: %w", what, id, ErrNoValue)
	}
	v.Value = *out.SecretString
	return v, nil
}

// PutPending stores value as version token with the AWSPENDING label.
// rotationToken, when not empty, is passed on so that Secrets Manager can tie
// the call to the rotation that invoked the function.
func (s *Store) PutPending(ctx context.Context, arn, token, value, rotationToken string) error {
	in := &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(arn),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(value),
		VersionStages:      []string{StagePending},
	}
	if rotationToken != "" {
		in.RotationToken = aws.String(rotationToken)
	}
	if _, err := s.count().PutSecretValue(ctx, in); err != nil {
		return fmt.Errorf("put pending version %s of %s: %w", token, arn, err)
	}
	return nil
}

// MoveCurrent moves AWSCURRENT from version from to version to. Secrets
// Manager moves AWSPREVIOUS onto from by itself.
//
// A refusal is checked against the labels before it is returned: when the
// SDK re-sent the call after the answer to a first one that took effect was
// lost, the second finds AWSCURRENT gone from from and is refused, although
// the label is where it should be. That refusal would fail a rotation that
// succeeded.
func (s *Store) MoveCurrent(ctx context.Context, arn, to, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId:        aws.String(arn),
		VersionStage:    aws.String(StageCurrent),
		MoveToVersionId: aws.String(to),
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := s.count().UpdateSecretVersionStage(ctx, in)
	if err == nil {
		return nil
	}
	var invalid *smtypes.InvalidParameterException
	if errors.As(err, &invalid) {
		if m, derr := s.Describe(ctx, arn); derr == nil && m.HasStage(to, StageCurrent) {
			return nil
		}
	}
	return fmt.Errorf("move %s of %s to version %s: %w", StageCurrent, arn, to, err)
}

func (s *Store) count() API {
	s.calls.Add(1)
	return s.api
}

// StageReader is the one Secrets Manager call ValueAtStage makes.
type StageReader interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// ValueAtStage reads the SecretString of the version of secret id that
// carries stage, for readers outside a rotation (the consumer libraries).
// ok is false when no version carries the stage, or when it holds no string
// value yet (the AWSPENDING placeholder before createSecret stored one).
func ValueAtStage(ctx context.Context, api StageReader, id, stage string) (value string, ok bool, err error) {
	value, _, ok, err = ReadStage(ctx, api, id, stage)
	return value, ok, err
}

// ReadStage is ValueAtStage that also returns the ARN of the secret read:
// in a replica region, the replica's.
func ReadStage(ctx context.Context, api StageReader, id, stage string) (value, arn string, ok bool, err error) {
	out, err := api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(id),
		VersionStage: aws.String(stage),
	})
	if err != nil {
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", "", false, nil
		}
		return "", "", false, fmt.Errorf("read %s of %s: %w", stage, id, err)
	}
	if out.SecretString == nil {
		return "", aws.ToString(out.ARN), false, nil
	}
	return *out.SecretString, aws.ToString(out.ARN), true, nil
}
