package iamkey

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Field names of the secret.
const (
	fieldUser   = "userName"
	fieldKeyID  = "accessKeyId"
	fieldSecret = "secretAccessKey"
)

// secret is one version of the secret. fields keeps every member, so that
// fields this function does not know survive a rotation.
type secret struct {
	UserName        string
	AccessKeyID     string
	SecretAccessKey string
	fields          map[string]json.RawMessage
}

// IAM user names: 1-64 characters of [\w+=,.@-].
var userNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)

// Access key ids: 16-128 word characters (AKIA... in practice).
var keyIDRE = regexp.MustCompile(`^\w{16,128}$`)

// parseSecret reads a version. Its errors never quote the value: encoding/json
// errors can quote input, so they are replaced, not wrapped.
func parseSecret(value string) (secret, error) {
	var s secret
	if err := json.Unmarshal([]byte(value), &s.fields); err != nil || s.fields == nil {
		return secret{}, errors.New("secret is not a JSON object")
	}
	str := func(name string, dst *string) error {
		raw, ok := s.fields[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("field %q of the secret is not a string", name)
		}
		return nil
	}
	for name, dst := range map[string]*string{fieldUser: &s.UserName, fieldKeyID: &s.AccessKeyID, fieldSecret: &s.SecretAccessKey} {
		if err := str(name, dst); err != nil {
			return secret{}, err
		}
	}
	if s.UserName == "" {
		return secret{}, fmt.Errorf("secret has no %q field", fieldUser)
	}
	if !userNameRE.MatchString(s.UserName) {
		return secret{}, fmt.Errorf("field %q of the secret is not a valid IAM user name: %q", fieldUser, s.UserName)
	}
	if s.AccessKeyID != "" && !keyIDRE.MatchString(s.AccessKeyID) {
		// The id is not secret, but a malformed one may be a pasted secret
		// key: do not echo it.
		return secret{}, fmt.Errorf("field %q of the secret is not an access key id", fieldKeyID)
	}
	if (s.AccessKeyID == "") != (s.SecretAccessKey == "") {
		return secret{}, fmt.Errorf("secret has one of %q and %q without the other", fieldKeyID, fieldSecret)
	}
	return s, nil
}

// with returns the secret with a new key, every other field kept.
func (s secret) with(keyID, secretKey string) (string, error) {
	out := make(map[string]json.RawMessage, len(s.fields)+2)
	for k, v := range s.fields {
		out[k] = v
	}
	for k, v := range map[string]string{fieldKeyID: keyID, fieldSecret: secretKey} {
		b, err := json.Marshal(v)
		if err != nil {
			return "", err
		}
		out[k] = b
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", errors.New("encode secret")
	}
	return string(b), nil
}
