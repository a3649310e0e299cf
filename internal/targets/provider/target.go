package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secrets-rotation/secrets-rotation/internal/httpsclient"
	"github.com/secrets-rotation/secrets-rotation/internal/password"
	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
	"github.com/secrets-rotation/secrets-rotation/internal/secretstore"
)

// Target rotates a key that a provider issues.
type Target struct {
	cfg    Config
	sm     secretstore.StageReader
	client *http.Client
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
}

var (
	_ rotation.Target   = (*Target)(nil)
	_ rotation.Finisher = (*Target)(nil)
	_ rotation.Idler    = (*Target)(nil)
)

// Option changes a Target.
type Option func(*Target)

// WrapTransport wraps the transport of the provider client (tests use it to
// count requests or to simulate a crash after one).
func WrapTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(t *Target) {
		t.client = httpsclient.New(wrap(t.client.Transport), 0)
	}
}

// New returns a Target for cfg, which should come from ConfigFromEnv. The
// admin secret is read with a Secrets Manager client made from awsCfg.
func New(cfg Config, awsCfg aws.Config, opts ...Option) *Target {
	t := &Target{
		cfg:    cfg,
		sm:     secretsmanager.NewFromConfig(awsCfg),
		client: httpsclient.New(httpsclient.Transport(cfg.roots), 0),
		now:    time.Now,
		sleep:  sleepCtx,
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// step is what one invocation knows: the secret, the variables every
// request of it may use, and the admin credential once read.
type step struct {
	t     *Target
	call  *caller
	log   *slog.Logger
	sec   rotation.Secret
	base  vars
	admin vars
}

func (t *Target) step(sec rotation.Secret, log *slog.Logger) (*step, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With(slog.String("provider", t.cfg.Provider))
	if !tokenRE.MatchString(sec.Token) {
		return nil, fmt.Errorf("rotation token %q is not 32 to 64 letters, digits, - and _", sec.Token)
	}
	base := vars{}
	base.set("token", sec.Token, false)
	base.set("secret_name", sec.Name, false)
	base.set("secret_hash", secretHash(sec.ARN), false)
	for k, v := range t.cfg.Constants {
		base.set("config."+k, v, false)
	}
	if t.cfg.keyName != nil {
		name, err := t.cfg.keyName.render(base, nil)
		if err != nil {
			return nil, fmt.Errorf("key.name: %w", err)
		}
		base.set("name", name, false)
	}
	return &step{
		t:    t,
		call: &caller{cfg: &t.cfg, client: t.client, log: log, sleep: t.sleep},
		log:  log,
		sec:  sec,
		base: base,
	}, nil
}

// vars returns the variables of a request with auth, extra added.
func (s *step) vars(ctx context.Context, auth string, current *secret, extra vars) (vars, error) {
	vs := s.base.with(extra)
	switch auth {
	case authAdmin:
		a, err := s.adminVars(ctx)
		if err != nil {
			return nil, err
		}
		vs = vs.with(a)
	case authCurrent:
		if current == nil || current.key() == "" {
			return nil, fmt.Errorf("the request authenticates with the current key, but the current version has no %q field", s.t.cfg.fields.key)
		}
		vs.set("current.key", current.key(), true)
		vs.set("current.id", current.id(), false)
	}
	return vs, nil
}

// adminVars reads the admin secret once per invocation. Only the fields the
// configuration declares are used, each must be a non-empty string; a
// secret that is not a JSON object is the single field "value".
func (s *step) adminVars(ctx context.Context) (vars, error) {
	if s.admin != nil {
		return s.admin, nil
	}
	id := s.t.cfg.AdminSecretID
	raw, ok, err := secretstore.ValueAtStage(ctx, s.t.sm, id, secretstore.StageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read the admin secret %s: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("the admin secret %s has no %s value", id, secretstore.StageCurrent)
	}
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(raw), &fields); err != nil || fields == nil {
		b, _ := json.Marshal(raw)
		fields = map[string]json.RawMessage{"value": b}
	}
	vs := vars{}
	for _, f := range s.t.cfg.AdminFields {
		var v string
		if err := json.Unmarshal(fields[f], &v); err != nil || v == "" {
			return nil, fmt.Errorf("the admin secret %s has no string field %q (admin.fields names it)", id, f)
		}
		vs.set("admin."+f, v, true)
	}
	s.admin = vs
	return vs, nil
}

// Idle implements rotation.Idler: setSecret has nothing to do without an
// activate request.
func (t *Target) Idle(stepName string) bool {
	return stepName == rotation.StepSet && t.cfg.activate == nil
}

// providerKey is a key the list request returned.
type providerKey struct {
	id, name string
	// token is the rotation that made it, when its name marks it as one of
	// this secret's keys (see ours).
	token string
}

// list returns every key of the account and the marker pattern of this
// secret's keys.
func (s *step) list(ctx context.Context, current *secret) ([]providerKey, error) {
	r := s.t.cfg.list
	vs, err := s.vars(ctx, r.auth, current, nil)
	if err != nil {
		return nil, err
	}
	rep, err := s.call.call(ctx, r, vs)
	if err != nil {
		return nil, err
	}
	items, ok := r.ptr["items"].resolve(rep.doc)
	arr, isArr := items.([]any)
	if !ok || !isArr {
		return nil, fmt.Errorf("list: the answer has no array at %s", r.ptr["items"])
	}
	mark, err := s.t.cfg.keyName.pattern(s.base)
	if err != nil {
		return nil, err
	}
	keys := make([]providerKey, 0, len(arr))
	for i, it := range arr {
		id, ok1 := r.ptr["id"].resolveString(it)
		name, ok2 := r.ptr["name"].resolveString(it)
		if !ok1 {
			return nil, fmt.Errorf("list: item %d of the answer has no id at %s", i, r.ptr["id"])
		}
		k := providerKey{id: id}
		if ok2 {
			k.name = name
			if m := mark.FindStringSubmatch(name); m != nil {
				k.token = m[1]
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// revoke revokes the key id. A key already gone (the revoke request's gone
// statuses) counts as revoked: a rerun after a crash finds it so.
func (s *step) revoke(ctx context.Context, id, reason string, current *secret) error {
	r := s.t.cfg.revoke
	vs, err := s.vars(ctx, r.auth, current, vars{"key_id": {s: id}})
	if err != nil {
		return err
	}
	rep, err := s.call.call(ctx, r, vs)
	if err != nil {
		return fmt.Errorf("revoke key %s (%s): %w", id, reason, err)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "provider key revoked",
		slog.String("key_id", id), slog.String("reason", reason), slog.Bool("was_gone", slices.Contains(r.gone, rep.status)))
	return nil
}

// Create makes the new key at the provider and returns the secret with it.
//
// Crash safety: createSecret may die after the provider made the key and
// before the engine stored it, and run again. The key is then found, never
// doubled: the create request carries the rotation token (as an
// idempotency key, in the key's name, or as the key id itself), so a
// provider that honours idempotency answers with the same key, a PUT of a
// chosen id overwrites it, and otherwise the list request finds the key the
// crashed attempt made (its name carries the token) and it is revoked once
// the new one exists. The same list also revokes keys of rotations that
// were abandoned before they stored anything.
func (t *Target) Create(ctx context.Context, req *rotation.CreateRequest) (rotation.CreateResponse, error) {
	s, err := t.step(req.Secret, req.Log)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	cur, err := parseSecret(req.Current.Value, t.cfg.fields)
	if err != nil {
		return rotation.CreateResponse{}, fmt.Errorf("current version: %w", err)
	}
	var listed []providerKey
	var attempts []providerKey // keys an earlier attempt of this rotation made
	if t.cfg.list != nil {
		if listed, err = s.list(ctx, &cur); err != nil {
			return rotation.CreateResponse{}, err
		}
		stages, err := req.Versions.Stages(ctx)
		if err != nil {
			return rotation.CreateResponse{}, err
		}
		previous := versionWith(stages, secretstore.StagePrevious)
		for _, k := range listed {
			reason := ""
			switch k.token {
			case "":
				continue // not this function's key for this secret
			case req.Secret.Token:
				attempts = append(attempts, k)
			case req.Current.ID:
				if k.id != cur.id() {
					reason = "made by the rotation of the current version but stored nowhere"
				}
			case previous:
				// In its grace period; finishSecret retires it.
			default:
				reason = "made by an older or abandoned rotation of this secret"
			}
			if reason != "" {
				if err := s.revoke(ctx, k.id, reason, &cur); err != nil {
					return rotation.CreateResponse{}, err
				}
			}
		}
	}

	issued := t.now().UTC().Format(time.RFC3339)
	extra := vars{}
	extra.set("issued_at", issued, false)
	if g := t.cfg.generate; g != nil {
		b, err := password.RandomBytes(g.bytes)
		if err != nil {
			return rotation.CreateResponse{}, fmt.Errorf("generate key: %w", err)
		}
		k, err := password.EncodeKey(b, g.encoding)
		if err != nil {
			return rotation.CreateResponse{}, fmt.Errorf("generate key: %w", err)
		}
		extra.set("key", g.prefix+k, true)
	}
	if t.cfg.keyID != nil {
		id, err := t.cfg.keyID.render(s.base, nil)
		if err != nil {
			return rotation.CreateResponse{}, fmt.Errorf("key.id: %w", err)
		}
		extra.set("key_id", id, false)
	}
	r := t.cfg.create
	vs, err := s.vars(ctx, r.auth, &cur, extra)
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	rep, err := s.call.call(ctx, r, vs)
	var pe *ProviderError
	if errors.As(err, &pe) && slices.Contains(r.limit, pe.Status) && len(attempts) > 0 {
		// The provider made no key and replayed none: the keys an
		// interrupted attempt made take the room. They were never stored;
		// revoke them and ask once more.
		for _, k := range attempts {
			if err := s.revoke(ctx, k.id, "made by an interrupted attempt of this rotation, at the key limit", &cur); err != nil {
				return rotation.CreateResponse{}, err
			}
		}
		attempts = nil
		rep, err = s.call.call(ctx, r, vs)
	}
	if err != nil {
		if errors.As(err, &pe) && slices.Contains(r.limit, pe.Status) {
			return rotation.CreateResponse{}, s.keyLimit(ctx, pe, listed, &cur)
		}
		return rotation.CreateResponse{}, err
	}
	key, id := extra["key"].s, extra["key_id"].s
	if p, ok := r.ptr["key"]; ok {
		key, _ = p.resolveString(rep.doc)
	}
	if p, ok := r.ptr["id"]; ok {
		id, _ = p.resolveString(rep.doc)
	}
	if key == "" || id == "" {
		return rotation.CreateResponse{}, s.unusable(ctx, key, id, &cur)
	}
	if len(id) > maxIDLen || noControl(id) != nil {
		return rotation.CreateResponse{}, fmt.Errorf("create: the provider's key id is longer than %d characters or has control characters", maxIDLen)
	}
	for _, k := range attempts {
		if k.id != id {
			if err := s.revoke(ctx, k.id, "made by an interrupted attempt of this rotation", &cur); err != nil {
				return rotation.CreateResponse{}, err
			}
		}
	}
	value, err := cur.with(key, id, issued, cur.id())
	if err != nil {
		return rotation.CreateResponse{}, err
	}
	reused := slices.ContainsFunc(attempts, func(k providerKey) bool { return k.id == id })
	s.log.LogAttrs(ctx, slog.LevelInfo, "provider key created",
		slog.String("key_id", id), slog.String("replaces_key_id", cur.id()),
		slog.Bool("made_by_an_interrupted_attempt", reused))
	return rotation.CreateResponse{Value: value}, nil
}

// unusable handles a create answer without the key or its id: whatever key
// the provider made is revoked (by its id, or found by its name), so that
// nothing is left behind, and createSecret fails.
func (s *step) unusable(ctx context.Context, key, id string, cur *secret) error {
	r := s.t.cfg.create
	missing := []string{}
	if key == "" {
		missing = append(missing, "the key at "+r.ptr["key"].String())
	}
	if id == "" {
		missing = append(missing, "its id at "+r.ptr["id"].String())
	}
	cause := fmt.Errorf("create: the provider's answer has no %s; nothing was stored", strings.Join(missing, " nor "))
	switch {
	case id != "":
		if err := s.revoke(ctx, id, "its create answer had no key", cur); err != nil {
			return fmt.Errorf("%w; revoking the key it made failed too: %w", cause, err)
		}
		return fmt.Errorf("%w, and the key it made was revoked", cause)
	case s.t.cfg.list != nil:
		keys, err := s.list(ctx, cur)
		if err != nil {
			return fmt.Errorf("%w; listing keys to revoke the one it made failed: %w", cause, err)
		}
		for _, k := range keys {
			if k.token == s.sec.Token {
				if err := s.revoke(ctx, k.id, "its create answer had no id", cur); err != nil {
					return fmt.Errorf("%w; revoking the key it made failed too: %w", cause, err)
				}
			}
		}
		return fmt.Errorf("%w, and the key it made was revoked", cause)
	}
	return fmt.Errorf("%w; the key the provider may have made cannot be found without a list request", cause)
}

// keyLimit explains a create refused for the account's key limit, naming
// the keys that exist.
func (s *step) keyLimit(ctx context.Context, pe *ProviderError, listed []providerKey, cur *secret) error {
	if s.t.cfg.list == nil {
		return fmt.Errorf("%w: %w (configure the list request to see which keys exist); nothing was stored", ErrKeyLimit, pe)
	}
	// The list made before the create may predate revocations: ask again.
	if keys, err := s.list(ctx, cur); err == nil {
		listed = keys
	}
	ids := make([]string, 0, len(listed))
	for _, k := range listed {
		desc := k.id
		if k.name != "" {
			desc += " (" + k.name + ")"
		}
		ids = append(ids, desc)
	}
	sort.Strings(ids)
	return fmt.Errorf("%w: %w; the account has %d keys: %s; nothing was stored: revoke a key that is not in use",
		ErrKeyLimit, pe, len(ids), strings.Join(ids, ", "))
}

// Set sends the activate request for the pending key, if there is one.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	r := t.cfg.activate
	if r == nil {
		return nil
	}
	s, err := t.step(req.Secret, req.Log)
	if err != nil {
		return err
	}
	pend, err := t.pending(ctx, req)
	if err != nil {
		return err
	}
	var cur *secret
	if r.auth == authCurrent {
		cv, err := req.Versions.Current(ctx)
		if err != nil {
			return err
		}
		c, err := parseSecret(cv.Value, t.cfg.fields)
		if err != nil {
			return fmt.Errorf("current version: %w", err)
		}
		cur = &c
	}
	if r.auth == authAdmin {
		// The admin credential acts on the pending key's id: prove it is
		// the key this rotation made, not one a writer of the secret chose.
		if err := s.proveRotationKey(ctx, pend.id(), cur); err != nil {
			return err
		}
	}
	vs, err := s.vars(ctx, r.auth, cur, pendingVars(pend))
	if err != nil {
		return err
	}
	if _, err := s.call.call(ctx, r, vs); err != nil {
		return err
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "provider key activated", slog.String("key_id", pend.id()))
	return nil
}

func pendingVars(p secret) vars {
	vs := vars{}
	vs.set("key", p.key(), true)
	vs.set("key_id", p.id(), false)
	v, _ := p.str(p.names.issued)
	vs.set("issued_at", v, false)
	return vs
}

// proveRotationKey checks that id is the key this rotation made: its id
// is key.id rendered for this rotation, or the list shows a key of that
// id named for this rotation.
func (s *step) proveRotationKey(ctx context.Context, id string, cur *secret) error {
	if s.t.cfg.keyID != nil {
		want, err := s.t.cfg.keyID.render(s.base, nil)
		if err != nil {
			return err
		}
		if id == want {
			return nil
		}
		return fmt.Errorf("the pending version's key id %q is not the one this rotation made (%q); refused", id, want)
	}
	keys, err := s.list(ctx, cur)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.id == id && k.token == s.sec.Token {
			return nil
		}
	}
	return fmt.Errorf("the pending version's key id %q is not a key of the provider named for this rotation; refused", id)
}

func (t *Target) pending(ctx context.Context, req *rotation.StepRequest) (secret, error) {
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return secret{}, err
	}
	p, err := parseSecret(pv.Value, t.cfg.fields)
	if err != nil {
		return secret{}, fmt.Errorf("pending version: %w", err)
	}
	if p.key() == "" || p.id() == "" {
		return secret{}, fmt.Errorf("pending version has no %q or no %q", t.cfg.fields.key, t.cfg.fields.id)
	}
	return p, nil
}

// Test sends the test request with the pending key; it must succeed (and,
// when the answer names the key it authenticated, name the pending one).
// With retry_for, a refusal is retried for that long: some providers take
// seconds to accept a new key everywhere.
func (t *Target) Test(ctx context.Context, req *rotation.StepRequest) error {
	s, err := t.step(req.Secret, req.Log)
	if err != nil {
		return err
	}
	pend, err := t.pending(ctx, req)
	if err != nil {
		return err
	}
	r := t.cfg.test
	vs, err := s.vars(ctx, r.auth, nil, pendingVars(pend))
	if err != nil {
		return err
	}
	deadline := t.now().Add(r.retryFor)
	delay := firstBackoff
	for attempt := 1; ; attempt++ {
		err = s.testOnce(ctx, r, vs, pend.id())
		if err == nil {
			s.log.LogAttrs(ctx, slog.LevelInfo, "pending key accepted by the provider",
				slog.String("key_id", pend.id()), slog.Int("attempts", attempt))
			return nil
		}
		var pe *ProviderError
		if !errors.As(err, &pe) || t.now().Add(delay).After(deadline) {
			return fmt.Errorf("pending key %s: %w", pend.id(), err)
		}
		if err := t.sleep(ctx, delay); err != nil {
			return fmt.Errorf("pending key %s: %w", pend.id(), err)
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (s *step) testOnce(ctx context.Context, r *request, vs vars, id string) error {
	rep, err := s.call.call(ctx, r, vs)
	if err != nil {
		return err
	}
	if p, ok := r.ptr["id"]; ok {
		got, _ := p.resolveString(rep.doc)
		if got != id {
			return fmt.Errorf("test: the provider authenticated key %q, not the pending key %q", got, id)
		}
	}
	return nil
}

// Finish revokes the keys whose grace period is over, once AWSCURRENT has
// moved to the new key: by default every key of this secret but the new
// current one and the one it replaced (AWSPREVIOUS, valid until the next
// rotation); with GRACE_PERIOD=0 the replaced one too. It is idempotent: a
// key already gone counts as revoked, so a rerun after a crash or a failed
// revoke ends where one run ends.
func (t *Target) Finish(ctx context.Context, req *rotation.StepRequest) error {
	s, err := t.step(req.Secret, req.Log)
	if err != nil {
		return err
	}
	pv, err := req.Versions.Pending(ctx)
	if err != nil {
		return err
	}
	now, err := parseSecret(pv.Value, t.cfg.fields)
	if err != nil {
		return fmt.Errorf("new version: %w", err)
	}
	var old *secret
	if req.Replaced != "" && req.Replaced != req.Secret.Token {
		ov, err := req.Versions.ByID(ctx, req.Replaced)
		switch {
		case err == nil:
			o, perr := parseSecret(ov.Value, t.cfg.fields)
			if perr == nil {
				old = &o
			} else {
				s.log.LogAttrs(ctx, slog.LevelWarn, "the replaced version is not a key secret; no key of it is revoked",
					slog.String("replaced_version", req.Replaced), slog.String("error", perr.Error()))
			}
		case !errors.Is(err, secretstore.ErrNoValue):
			return err
		}
	}
	keep := map[string]bool{now.id(): true}
	if old != nil && !t.cfg.RevokeAtOnce {
		keep[old.id()] = true
	}
	done := map[string]bool{}
	revokeOnce := func(id, reason string) error {
		if id == "" || keep[id] || done[id] {
			return nil
		}
		done[id] = true
		return s.revoke(ctx, id, reason, &now)
	}

	var listed []providerKey
	if t.cfg.list != nil {
		if listed, err = s.list(ctx, &now); err != nil {
			return err
		}
		stages, err := req.Versions.Stages(ctx)
		if err != nil {
			return err
		}
		for _, k := range listed {
			reason := ""
			switch {
			case k.token == "":
				continue
			case k.token == req.Secret.Token:
				reason = "made by this rotation but stored nowhere"
			case k.token == req.Replaced && old == nil:
				continue // its version cannot be read: which key it holds is unknown
			case k.token == req.Replaced:
				reason = "the replaced key (GRACE_PERIOD=0)"
				if !t.cfg.RevokeAtOnce {
					reason = "made by the replaced version's rotation but stored nowhere"
				}
			case slices.Contains(stages[k.token], secretstore.StagePending):
				continue // a rotation that started since: not ours to judge
			default:
				reason = "grace period over (older than AWSPREVIOUS)"
			}
			if err := revokeOnce(k.id, reason); err != nil {
				return err
			}
		}
	}

	// The key the replaced version held (GRACE_PERIOD=0), or the one it had
	// replaced in turn: found by the ids the versions hold, whether or not
	// the provider can list keys. The key's name proves it is this secret's
	// when the list shows it; a key the function did not make (the first
	// key, made by hand) is revoked only with the current key, whose owner
	// the secret's writer already is: the admin credential never acts on a
	// key id the function cannot prove.
	if old != nil {
		id, reason := old.replaced(), "grace period over (it was AWSPREVIOUS)"
		if t.cfg.RevokeAtOnce {
			id, reason = old.id(), "the replaced key (GRACE_PERIOD=0)"
		}
		if id != "" && !keep[id] && !done[id] {
			switch own := s.ownKey(id, listed); {
			case own == keyGone:
				// The list does not show it: already revoked.
			case own == keyProven || t.cfg.revoke.auth == authCurrent:
				if err := revokeOnce(id, reason); err != nil {
					return err
				}
			default:
				s.log.LogAttrs(ctx, slog.LevelWarn, "key not revoked: nothing proves this function made it for this secret (revoke it by hand)",
					slog.String("key_id", id), slog.String("reason", reason))
			}
		}
	}
	return nil
}

// What is known of a key id that a version holds.
const (
	keyUnproven = iota // it may be anyone's key
	keyProven          // this function made it for this secret
	keyGone            // the list does not show it
)

// ownKey tells whether id is provably a key this function made for this
// secret: its id follows key.id, or the list shows it under this secret's
// name.
func (s *step) ownKey(id string, listed []providerKey) int {
	if s.t.cfg.keyID != nil {
		if re, err := s.t.cfg.keyID.pattern(s.base); err == nil && re.MatchString(id) {
			return keyProven
		}
	}
	if s.t.cfg.list == nil {
		return keyUnproven
	}
	for _, k := range listed {
		if k.id == id {
			if k.token != "" {
				return keyProven
			}
			return keyUnproven
		}
	}
	return keyGone
}

func versionWith(stages map[string][]string, stage string) string {
	for id, st := range stages {
		if slices.Contains(st, stage) {
			return id
		}
	}
	return ""
}
