package rotation

import (
	"context"
	"errors"
	"fmt"

	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// Versions reads the versions of the secret under rotation, once each, and
// only when a target asks: a target that needs no value costs no call.
type Versions struct {
	store *secretstore.Store
	meta  secretstore.Metadata
	token string
	cache map[string]string
	// noValue holds the ErrNoValue answers, by version id.
	noValue map[string]error
}

func newVersions(store *secretstore.Store, meta secretstore.Metadata, token string) *Versions {
	return &Versions{store: store, meta: meta, token: token, cache: map[string]string{}, noValue: map[string]error{}}
}

// Stages returns the staging labels of every version, as DescribeSecret gave
// them at the start of this invocation.
func (v *Versions) Stages() map[string][]string {
	out := make(map[string][]string, len(v.meta.Stages))
	for id, s := range v.meta.Stages {
		out[id] = append([]string(nil), s...)
	}
	return out
}

// ByID reads the version id. A version found to hold no value (the pending
// placeholder before createSecret stored one) is remembered as such too, so
// the engine's check and a target's own look at it cost one call.
func (v *Versions) ByID(ctx context.Context, id string) (Version, error) {
	if val, ok := v.cache[id]; ok {
		return Version{ID: id, Value: val}, nil
	}
	if err, ok := v.noValue[id]; ok {
		return Version{}, err
	}
	val, err := v.store.Value(ctx, v.meta.ARN, id)
	if errors.Is(err, secretstore.ErrNoValue) {
		v.noValue[id] = err
	}
	if err != nil {
		return Version{}, err
	}
	v.cache[id] = val
	return Version{ID: id, Value: val}, nil
}

// Current reads the AWSCURRENT version.
func (v *Versions) Current(ctx context.Context) (Version, error) {
	id, ok := v.meta.VersionWithStage(secretstore.StageCurrent)
	if !ok {
		return Version{}, fmt.Errorf("secret has no %s version", secretstore.StageCurrent)
	}
	return v.ByID(ctx, id)
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
	id, ok := v.meta.VersionWithStage(secretstore.StagePrevious)
	if !ok {
		return Version{}, false, nil
	}
	ver, err = v.ByID(ctx, id)
	return ver, err == nil, err
}
