package iamkey

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// IAM allows this many access keys per user.
const maxKeysPerUser = 2

// intentTagPrefix starts the key of the user tag that records a
// createSecret in progress; the rest is a hash of the secret's ARN, so that
// two secrets that share a user do not mix their intents.
const intentTagPrefix = "secrets-rotation:intent:"

// Target rotates the access key of an IAM user.
type Target struct {
	cfg    Config
	iam    *iam.Client
	awsCfg aws.Config
}

var (
	_ rotation.Target   = (*Target)(nil)
	_ rotation.Finisher = (*Target)(nil)
)

// New returns a Target that calls IAM and STS with awsCfg. iamOpts change the
// IAM client (tests use them to simulate a crash).
func New(cfg Config, awsCfg aws.Config, iamOpts ...func(*iam.Options)) *Target {
	return &Target{cfg: cfg, iam: iam.NewFromConfig(awsCfg, iamOpts...), awsCfg: awsCfg}
}

type accessKey struct {
	ID     string
	Active bool
}

// Create retires the keys that must go, then makes the new key.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	log := logger(req.Log)
	cur, err := parseSecret(req.Current.Value)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("current version: %w", err)
	}
	user := cur.UserName
	if _, err := t.getUser(ctx, user, req.Secret); err != nil {
		return rotation.CreateResponse{}, err
	}
	keys, err := t.listKeys(ctx, user)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	refs, err := referencedKeys(ctx, req.Versions, req.Secret.Token)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	tagKey := intentTagKey(req.Secret.ARN)
	in, err := t.readIntent(ctx, user, tagKey)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	live := false
	if in != nil {
		// An intent whose version holds a value is stale: that createSecret
		// finished, and its key is referenced.
		_, verr := req.Versions.ByID(ctx, in.token)
		switch {
		case errors.Is(verr, secretstore.ErrNoValue):
			live = true
		case verr != nil:
			return rotation.CreateResponse{}, fmt.Errorf("read version %s named by the intent tag of user %s: %w", in.token, user, verr)
		}
	}

	type retiring struct{ id, reason string }
	var retire []retiring
	var stay, foreign []string
	for _, k := range keys {
		switch {
		case k.ID == cur.AccessKeyID:
			stay = append(stay, k.ID)
		case refs[k.ID] != "":
			retire = append(retire, retiring{k.ID, "key of version " + refs[k.ID]})
		case live && !slices.Contains(in.before, k.ID):
			retire = append(retire, retiring{k.ID, "orphan of an interrupted createSecret"})
		default:
			stay = append(stay, k.ID)
			foreign = append(foreign, k.ID)
		}
	}
	if len(stay) >= maxKeysPerUser {
		// Refuse before changing anything: a key the secret does not own
		// may be in use by someone else.
		return rotation.CreateResponse{}, fmt.Errorf("IAM user %s already has %d access keys and %s not referenced by the secret (%s): delete the key that is not in use, or store it in the secret; nothing was changed",
			user, len(stay), plural(len(foreign), "one is", "they are"), strings.Join(foreign, ", "))
	}
	if cur.AccessKeyID != "" && !slices.Contains(stay, cur.AccessKeyID) {
		log.LogAttrs(ctx, slog.LevelWarn, "the current access key is not a key of the user; the new key replaces it",
			slog.String("user", user), slog.String("access_key_id", cur.AccessKeyID))
	}
	for _, r := range retire {
		if err := t.retire(ctx, user, r.id); err != nil {
			return rotation.CreateResponse{}, err
		}
		log.LogAttrs(ctx, slog.LevelInfo, "access key deleted",
			slog.String("user", user), slog.String("access_key_id", r.id), slog.String("reason", r.reason))
	}

	// Record the intent before the key exists, so that a rerun after a
	// crash can tell the key this call makes from a key someone else made.
	if err := t.writeIntent(ctx, user, tagKey, intent{token: req.Secret.Token, before: stay}); err != nil {
		return rotation.CreateResponse{}, err
	}
	// Never retried by the SDK: a retry after an answer that was lost on
	// the way (the key exists, its secret never arrived) makes a second key,
	// and the first stays behind unreferenced, blocking later rotations at
	// IAM's two keys. Failing instead lets Secrets Manager rerun
	// createSecret, which finds the intent tag and deletes the orphan.
	out, err := t.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(user)},
		func(o *iam.Options) { o.RetryMaxAttempts = 1 })
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("create access key for IAM user %s: %w", user, err)
	}
	id := aws.ToString(out.AccessKey.AccessKeyId)
	value, err := cur.with(id, aws.ToString(out.AccessKey.SecretAccessKey))
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	log.LogAttrs(ctx, slog.LevelInfo, "access key created", slog.String("user", user), slog.String("access_key_id", id))
	return rotation.CreateResponse{Value: value}, nil
}

// Set checks that the pending key belongs to the user of the current
// version and is active, and clears the intent tag: the key is stored now.
// IAM keys work as soon as they exist; there is nothing else to set.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	pend, err := t.pendingForCurrentUser(ctx, req)
	if err != nil {
		return err
	}
	if _, err := t.getUser(ctx, pend.UserName, req.Secret); err != nil {
		return err
	}
	if err := t.checkActive(ctx, pend); err != nil {
		return err
	}
	tagKey := intentTagKey(req.Secret.ARN)
	in, err := t.readIntent(ctx, pend.UserName, tagKey)
	if err != nil {
		return err
	}
	if in != nil && in.token == req.Secret.Token {
		if _, err := t.iam.UntagUser(ctx, &iam.UntagUserInput{UserName: aws.String(pend.UserName), TagKeys: []string{tagKey}}); err != nil {
			return fmt.Errorf("remove intent tag of IAM user %s: %w", pend.UserName, err)
		}
	}
	return nil
}

// Test signs a GetCallerIdentity call with the pending key and expects the
// user's ARN. A new key takes a few seconds to reach every IAM endpoint, so
// failures are retried until TestTimeout.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	pend, err := t.pendingForCurrentUser(ctx, req)
	if err != nil {
		return err
	}
	if err := t.checkActive(ctx, pend); err != nil {
		return err
	}
	u, err := t.getUser(ctx, pend.UserName, req.Secret)
	if err != nil {
		return err
	}
	want := aws.ToString(u.Arn)
	attempts, err := t.checkIdentity(ctx, pend.AccessKeyID, pend.SecretAccessKey, want)
	if err != nil {
		return fmt.Errorf("pending access key %s of IAM user %s: %w", pend.AccessKeyID, pend.UserName, err)
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "pending access key accepted",
		slog.String("access_key_id", pend.AccessKeyID), slog.String("arn", want), slog.Int("attempts", attempts))
	return nil
}

// checkIdentity calls GetCallerIdentity signed with the key until it returns
// want or TestTimeout has passed.
func (t *Target) checkIdentity(ctx context.Context, keyID, secretKey, want string) (attempts int, err error) {
	client := sts.NewFromConfig(t.awsCfg, func(o *sts.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(keyID, secretKey, "")
	})
	return t.retry(ctx, func() error {
		out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return err
		}
		if got := aws.ToString(out.Arn); got != want {
			return fmt.Errorf("GetCallerIdentity returned %s, want %s", got, want)
		}
		return nil
	})
}

// retry calls fn with backoff until it succeeds or TestTimeout has passed:
// IAM is eventually consistent, and a key just made can be missing from
// ListAccessKeys or refused by STS for some seconds.
func (t *Target) retry(ctx context.Context, fn func() error) (attempts int, err error) {
	deadline := time.Now().Add(t.cfg.TestTimeout)
	delay := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return attempt, nil
		}
		if time.Now().Add(delay).After(deadline) {
			return attempt, fmt.Errorf("not accepted after %d attempts in %s: %w", attempt, t.cfg.TestTimeout, err)
		}
		select {
		case <-ctx.Done():
			return attempt, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Finish deactivates the old key when DEACTIVATE_PREVIOUS_KEY is set: the
// key of req.Replaced, the version that AWSCURRENT moved away from. It is
// idempotent (deactivating an inactive key changes nothing), so a retry of
// finishSecret after it failed deactivates the key then.
func (t *Target) Finish(ctx context.Context, req *rotation.StepRequest) error {
	if err := t.recordKeyCreated(ctx, req); err != nil {
		return err
	}
	if !t.cfg.DeactivatePrevious {
		return nil
	}
	oldID := req.Replaced
	if oldID == "" || oldID == req.Secret.Token {
		return nil
	}
	oldV, err := req.Versions.ByID(ctx, oldID)
	if err != nil {
		return err
	}
	old, err := parseSecret(oldV.Value)
	if err != nil {
		return fmt.Errorf("version %s: %w", oldID, err)
	}
	pend, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	p, err := parseSecret(pend.Value)
	if err != nil {
		return fmt.Errorf("new version: %w", err)
	}
	if old.AccessKeyID == "" || old.AccessKeyID == p.AccessKeyID || old.UserName != p.UserName {
		return nil
	}
	if _, err := t.getUser(ctx, old.UserName, req.Secret); err != nil {
		return err
	}
	if err := t.setStatus(ctx, old.UserName, old.AccessKeyID, iamtypes.StatusTypeInactive); err != nil {
		return err
	}
	logger(req.Log).LogAttrs(ctx, slog.LevelInfo, "previous access key deactivated",
		slog.String("user", old.UserName), slog.String("access_key_id", old.AccessKeyID))
	return nil
}

// BindingTag is the user tag that says which secret may rotate the user's
// keys: its value is that secret's ARN or name. Whoever administers IAM
// sets it; the function cannot (its role may only write its intent tags).
const BindingTag = "secrets-rotation:secret"

// getUser reads the IAM user the secret names and refuses it unless the
// function's configuration and IAM say this secret may manage it: its path
// lies under IAM_USER_PATH, and its BindingTag names the secret. The
// secret's writer chooses the user name; without the tag, the writer of one
// secret could have the function make keys for another user under the path
// and store them in a secret they can read.
func (t *Target) getUser(ctx context.Context, name string, sec rotation.Secret) (*iamtypes.User, error) {
	out, err := t.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(name)})
	if err != nil {
		var nse *iamtypes.NoSuchEntityException
		if errors.As(err, &nse) {
			return nil, fmt.Errorf("IAM user %s (field %q of the secret) does not exist: %w", name, fieldUser, err)
		}
		return nil, fmt.Errorf("get IAM user %s: %w", name, err)
	}
	if path := aws.ToString(out.User.Path); !strings.HasPrefix(path, t.cfg.UserPath) {
		return nil, fmt.Errorf("field %q of the secret names IAM user %s, whose path %s is not under IAM_USER_PATH %s: this function may not manage its keys; nothing was changed",
			fieldUser, name, path, t.cfg.UserPath)
	}
	var bound string
	for _, tag := range out.User.Tags {
		if aws.ToString(tag.Key) == BindingTag {
			bound = aws.ToString(tag.Value)
		}
	}
	if bound == "" || (bound != sec.ARN && bound != sec.Name) {
		got := "has no tag " + BindingTag
		if bound != "" {
			got = "has " + BindingTag + "=" + bound
		}
		return nil, fmt.Errorf("field %q of the secret names IAM user %s, which %s: the user must carry the tag %s with this secret's ARN or name (%s) for the function to manage its keys; nothing was changed",
			fieldUser, name, got, BindingTag, sec.Name)
	}
	return out.User, nil
}

// pendingForCurrentUser reads the pending version and checks that it names
// the user of the current one, so that a version written by hand cannot
// point the rotation at another user.
func (t *Target) pendingForCurrentUser(ctx context.Context, req *rotation.StepRequest) (secret, error) {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return secret{}, err
	}
	pend, err := parseSecret(pv.Value)
	if err != nil {
		return secret{}, fmt.Errorf("pending version: %w", err)
	}
	if pend.AccessKeyID == "" {
		return secret{}, fmt.Errorf("pending version has no %q", fieldKeyID)
	}
	cv, err := req.Versions.Current(ctx)
	if err != nil {
		return secret{}, err
	}
	cur, err := parseSecret(cv.Value)
	if err != nil {
		return secret{}, fmt.Errorf("current version: %w", err)
	}
	if cur.UserName != pend.UserName {
		return secret{}, fmt.Errorf("pending version names IAM user %s but the current version names %s", pend.UserName, cur.UserName)
	}
	return pend, nil
}

// checkActive checks, retrying within TestTimeout, that the key is an
// active key of the user.
func (t *Target) checkActive(ctx context.Context, s secret) error {
	_, err := t.retry(ctx, func() error { return t.activeNow(ctx, s) })
	return err
}

func (t *Target) activeNow(ctx context.Context, s secret) error {
	keys, err := t.listKeys(ctx, s.UserName)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == s.AccessKeyID {
			if !k.Active {
				return fmt.Errorf("pending access key %s of IAM user %s is inactive", k.ID, s.UserName)
			}
			return nil
		}
	}
	return fmt.Errorf("pending access key %s is not a key of IAM user %s", s.AccessKeyID, s.UserName)
}

func (t *Target) listKeys(ctx context.Context, user string) ([]accessKey, error) {
	var keys []accessKey
	p := iam.NewListAccessKeysPaginator(t.iam, &iam.ListAccessKeysInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			var nse *iamtypes.NoSuchEntityException
			if errors.As(err, &nse) {
				return nil, fmt.Errorf("IAM user %s does not exist: %w", user, err)
			}
			return nil, fmt.Errorf("list access keys of IAM user %s: %w", user, err)
		}
		for _, m := range out.AccessKeyMetadata {
			keys = append(keys, accessKey{ID: aws.ToString(m.AccessKeyId), Active: m.Status == iamtypes.StatusTypeActive})
		}
	}
	return keys, nil
}

// retire deactivates, then deletes a key. Deactivating first means that a
// failed delete still leaves the key unusable, and a rerun finishes it.
func (t *Target) retire(ctx context.Context, user, id string) error {
	if err := t.setStatus(ctx, user, id, iamtypes.StatusTypeInactive); err != nil {
		return err
	}
	_, err := t.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id)})
	var nse *iamtypes.NoSuchEntityException
	if err != nil && !errors.As(err, &nse) {
		return fmt.Errorf("delete access key %s of IAM user %s: %w", id, user, err)
	}
	return nil
}

func (t *Target) setStatus(ctx context.Context, user, id string, status iamtypes.StatusType) error {
	_, err := t.iam.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(user), AccessKeyId: aws.String(id), Status: status})
	var nse *iamtypes.NoSuchEntityException
	if err != nil && !errors.As(err, &nse) {
		return fmt.Errorf("set access key %s of IAM user %s %s: %w", id, user, status, err)
	}
	return nil
}

// referencedKeys maps the access key ids of the stored versions (all but
// the pending one) to the version that holds each.
func referencedKeys(ctx context.Context, v *rotation.Versions, token string) (map[string]string, error) {
	refs := map[string]string{}
	stages, err := v.Stages(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(stages))
	for id := range stages {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if id == token {
			continue
		}
		ver, err := v.ByID(ctx, id)
		if errors.Is(err, secretstore.ErrNoValue) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s, err := parseSecret(ver.Value)
		if err != nil {
			// An old version in another shape references no key we can see.
			continue
		}
		if s.AccessKeyID != "" {
			refs[s.AccessKeyID] = id
		}
	}
	return refs, nil
}

// intent is the user tag that createSecret writes before CreateAccessKey.
type intent struct {
	token  string
	before []string
}

func intentTagKey(secretARN string) string {
	sum := sha256.Sum256([]byte(secretARN))
	return intentTagPrefix + hex.EncodeToString(sum[:8])
}

func (t *Target) readIntent(ctx context.Context, user, key string) (*intent, error) {
	p := iam.NewListUserTagsPaginator(t.iam, &iam.ListUserTagsInput{UserName: aws.String(user)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tags of IAM user %s: %w", user, err)
		}
		for _, tag := range out.Tags {
			if aws.ToString(tag.Key) != key {
				continue
			}
			f := strings.Fields(aws.ToString(tag.Value))
			if len(f) == 0 {
				return nil, nil
			}
			return &intent{token: f[0], before: f[1:]}, nil
		}
	}
	return nil, nil
}

func (t *Target) writeIntent(ctx context.Context, user, key string, in intent) error {
	// Tag values allow letters, digits, spaces and _.:/=+-@ only: the key
	// ids are separated by spaces.
	value := strings.Join(append([]string{in.token}, in.before...), " ")
	_, err := t.iam.TagUser(ctx, &iam.TagUserInput{
		UserName: aws.String(user),
		Tags:     []iamtypes.Tag{{Key: aws.String(key), Value: aws.String(value)}},
	})
	if err != nil {
		return fmt.Errorf("write intent tag on IAM user %s: %w", user, err)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
