// Package iamkey is the rotation target for the access keys of an IAM user.
// The secret is a JSON object:
//
//	{"userName": "app-deployer", "accessKeyId": "AKIA...", "secretAccessKey": "..."}
//
// Other fields are kept as they are. A first secret may hold the userName
// alone: the first rotation then creates the user's first managed key.
//
// createSecret makes a new key with CreateAccessKey. IAM allows two keys per
// user, so it first retires (deactivates, then deletes) the key of
// AWSPREVIOUS, which the rotation before left active for a grace period, and
// any key that an earlier createSecret made but died before storing. Keys
// that no version of the secret references and that this function did not
// make are never touched: if they leave no room, createSecret refuses.
//
// To recognise its own orphans, createSecret writes an intent tag on the
// user before CreateAccessKey: the rotation token and the ids of the keys
// that existed then. A key that appeared after an intent whose version never
// got a value, and that no version references, can only be the one that
// createSecret made before it died. setSecret removes the tag once the new
// key is stored.
//
// The secret names the user, and whoever may write the secret chooses that
// name; the function's configuration says which users it may manage at all:
// those whose IAM path is under IAM_USER_PATH. The template's role grants
// the IAM actions on the same path only.
//
// Environment of the Lambda function:
//
//	Variable                  Default             Meaning
//	IAM_USER_PATH             /secrets-rotation/  only users whose path starts with it are rotated
//	IAM_ALLOW_ALL_USERS       false               must be true for IAM_USER_PATH=/ (every user of
//	                                              the account, administrators included)
//	DEACTIVATE_PREVIOUS_KEY   false               deactivate the old key right after finishSecret,
//	                                              instead of leaving it active for one rotation interval
//	TEST_TIMEOUT              60s                 how long setSecret and testSecret retry while IAM propagates the new key
package iamkey

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the configuration of a Target.
type Config struct {
	// UserPath is the IAM path prefix of the users whose keys the function
	// may rotate; a secret that names another user is refused.
	UserPath string
	// DeactivatePrevious deactivates the key of the old AWSCURRENT version
	// as soon as finishSecret has moved the label away from it.
	DeactivatePrevious bool
	// TestTimeout bounds the retries of testSecret: a new IAM key takes
	// some seconds to be accepted everywhere.
	TestTimeout time.Duration
}

const defaultTestTimeout = 60 * time.Second

// DefaultUserPath is the IAM path of the users the function rotates unless
// IAM_USER_PATH says otherwise; the template's IamUserPath has the same
// default.
const DefaultUserPath = "/secrets-rotation/"

// IAM paths: "/" or "/" followed by segments of printable ASCII, each ended
// by "/"; at most 512 characters.
var userPathRE = regexp.MustCompile(`^/([\x21-\x2E\x30-\x7E]+/)*$`)

// ConfigFromEnv reads and validates the configuration through getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{TestTimeout: defaultTestTimeout, UserPath: DefaultUserPath}
	if s := strings.TrimSpace(getenv("IAM_USER_PATH")); s != "" {
		if len(s) > 512 || !userPathRE.MatchString(s) {
			return Config{}, fmt.Errorf("IAM_USER_PATH=%q is not an IAM path such as /secrets-rotation/ (it starts and ends with /)", s)
		}
		c.UserPath = s
	}
	allowAll := false
	if s := strings.TrimSpace(getenv("IAM_ALLOW_ALL_USERS")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Config{}, fmt.Errorf("IAM_ALLOW_ALL_USERS=%q is not a boolean", s)
		}
		allowAll = b
	}
	if c.UserPath == "/" && !allowAll {
		return Config{}, errors.New("IAM_USER_PATH=/ would let any secret's writer have keys made for every IAM user of the account, administrators included: use a narrower path, or set IAM_ALLOW_ALL_USERS=true to mean it")
	}
	if s := strings.TrimSpace(getenv("DEACTIVATE_PREVIOUS_KEY")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return Config{}, fmt.Errorf("DEACTIVATE_PREVIOUS_KEY=%q is not a boolean", s)
		}
		c.DeactivatePrevious = b
	}
	if s := strings.TrimSpace(getenv("TEST_TIMEOUT")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return Config{}, fmt.Errorf("TEST_TIMEOUT=%q is not a Go duration between 0 and 10m such as 60s", s)
		}
		c.TestTimeout = d
	}
	return c, nil
}

// Describe returns the configuration as log attributes.
func (c Config) Describe() []slog.Attr {
	return []slog.Attr{
		slog.String("iam_user_path", c.UserPath),
		slog.Bool("deactivate_previous_key", c.DeactivatePrevious),
		slog.Duration("test_timeout", c.TestTimeout),
	}
}
