package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// Versions reads the versions of the secret under rotation, once each, and
// only when a target asks: a target that needs no value costs no call.
//
// A version's value never changes once stored (Secrets Manager refuses a
// second value under the same version id), so what one step of a rotation
// read or stored is remembered for the later steps that the same function
// instance runs (see rotationCache); a value found there costs no call.
type Versions struct {
	store    *secretstore.Store
	secretID string
	token    string
	// meta is what DescribeSecret said at the start of the invocation; nil
	// for a step that did not need it (testSecret reads the pending version
	// directly, which proves the same).
	meta  *secretstore.Metadata
	known *cachedRotation
	// noValue holds the ErrNoValue answers, by version id.
	noValue map[string]error
}

func newVersions(store *secretstore.Store, secretID, token string, meta *secretstore.Metadata, known *cachedRotation) *Versions {
	return &Versions{store: store, secretID: secretID, token: token, meta: meta, known: known, noValue: map[string]error{}}
}

// describe returns the metadata, reading it on first use in a step that
// started without it.
func (v *Versions) describe(ctx context.Context) (*secretstore.Metadata, error) {
	if v.meta != nil {
		return v.meta, nil
	}
	m, err := v.store.Describe(ctx, v.secretID)
	if err != nil {
		return nil, err
	}
	v.meta = &m
	return v.meta, nil
}

// Stages returns the staging labels of every version, as DescribeSecret gave
// them at the start of this invocation (or at first use, in a step that had
// no need of them before).
func (v *Versions) Stages(ctx context.Context) (map[string][]string, error) {
	m, err := v.describe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(m.Stages))
	for id, s := range m.Stages {
		out[id] = append([]string(nil), s...)
	}
	return out, nil
}

// ByID reads the version id. A version found to hold no value (the pending
// placeholder before createSecret stored one) is remembered as such for the
// invocation, so the engine's check and a target's own look at it cost one
// call.
func (v *Versions) ByID(ctx context.Context, id string) (Version, error) {
	if val, ok := v.known.get(id); ok {
		return Version{ID: id, Value: val}, nil
	}
	if err, ok := v.noValue[id]; ok {
		return Version{}, err
	}
	got, err := v.store.Read(ctx, v.secretID, id, "")
	if errors.Is(err, secretstore.ErrNoValue) {
		v.noValue[id] = err
	}
	if err != nil {
		return Version{}, err
	}
	v.known.put(id, got.Value)
	return Version{ID: id, Value: got.Value}, nil
}

// atStage reads the version that carries stage. With the metadata at hand
// it reads by id (so a value already known costs nothing); without, by
// stage, which returns the id as well.
func (v *Versions) atStage(ctx context.Context, stage string) (Version, bool, error) {
	if v.meta != nil {
		id, ok := v.meta.VersionWithStage(stage)
		if !ok {
			return Version{}, false, nil
		}
		ver, err := v.ByID(ctx, id)
		return ver, err == nil, err
	}
	got, err := v.store.Read(ctx, v.secretID, "", stage)
	if errors.Is(err, secretstore.ErrNoValue) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, err
	}
	v.known.put(got.ID, got.Value)
	return Version{ID: got.ID, Value: got.Value}, true, nil
}

// Current reads the AWSCURRENT version.
func (v *Versions) Current(ctx context.Context) (Version, error) {
	ver, ok, err := v.atStage(ctx, secretstore.StageCurrent)
	if err != nil {
		return Version{}, err
	}
	if !ok {
		return Version{}, fmt.Errorf("secret has no %s version: %w", secretstore.StageCurrent, secretstore.ErrNoValue)
	}
	return ver, nil
}

// Pending reads the version being rotated in (the token's version).
func (v *Versions) Pending(ctx context.Context) (Version, error) {
	ver, err := v.ByID(ctx, v.token)
	if err != nil {
		return Version{}, fmt.Errorf("pending version (has createSecret run?): %w", err)
	}
	return ver, nil
}

// Previous reads the AWSPREVIOUS version; ok is false when there is none.
func (v *Versions) Previous(ctx context.Context) (ver Version, ok bool, err error) {
	return v.atStage(ctx, secretstore.StagePrevious)
}
