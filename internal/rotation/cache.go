package rotation

import "sync"

// rotationCache remembers, per secret, the version values that the steps of
// the rotation in progress have read or stored, so that the later steps run
// by the same function instance need not read them again. Secrets Manager
// invokes the four steps one after the other, and Lambda hands consecutive
// invocations to a warm instance, so on AWS most steps find the values here;
// a step run by a fresh instance reads them, exactly as without the cache.
//
// It is sound because a version's value never changes: Secrets Manager
// refuses a PutSecretValue that would give an existing version id another
// value (ResourceExistsException). Only values are kept, never labels: every
// step that changes something still asks DescribeSecret where the labels
// are. An entry is dropped when its rotation finishes or another rotation of
// the same secret starts, so values stay in memory no longer than the
// rotation that needed them.
type rotationCache struct {
	mu       sync.Mutex
	bySecret map[string]*cachedRotation
}

// cachedRotation holds the known values of one rotation, by version id. A
// nil *cachedRotation knows nothing and forgets what it is given.
type cachedRotation struct {
	mu       sync.Mutex
	secretID string
	token    string
	arn      string
	name     string
	values   map[string]string
}

func newRotationCache() *rotationCache {
	return &rotationCache{bySecret: map[string]*cachedRotation{}}
}

// rotation returns the entry of the rotation token of secretID (the event's
// SecretId, which Secrets Manager passes unchanged to every step), replacing
// the entry of an earlier rotation of that secret.
func (c *rotationCache) rotation(secretID, token string) *cachedRotation {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.bySecret[secretID]
	if r == nil || r.token != token {
		r = &cachedRotation{secretID: secretID, token: token, values: map[string]string{}}
		c.bySecret[secretID] = r
	}
	return r
}

// forget drops what is known of the rotation r.
func (c *rotationCache) forget(r *cachedRotation) {
	if r == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bySecret[r.secretID] == r {
		delete(c.bySecret, r.secretID)
	}
}

// identify records the secret's ARN and name, which the steps that skip
// DescribeSecret need for their requests and log lines.
func (r *cachedRotation) identify(arn, name string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.arn, r.name = arn, name
}

func (r *cachedRotation) identity() (arn, name string) {
	if r == nil {
		return "", ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.arn, r.name
}

func (r *cachedRotation) get(id string) (string, bool) {
	if r == nil {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.values[id]
	return v, ok
}

func (r *cachedRotation) put(id, value string) {
	if r == nil || id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.values[id] = value
}
