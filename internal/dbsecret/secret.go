// Package dbsecret is the secret format of the database rotation functions
// (the JSON fields of the AWS documentation: engine, host, port, username,
// password, dbname, masterarn, the RDS identifiers, ssl, ca_bundle), the
// choice of strategy it implies, and the endpoint a database driver
// connects to.
package dbsecret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
)

// The engines the functions serve, as the "engine" field names them.
const (
	EnginePostgres = "postgres"
	EngineMySQL    = "mysql"
	EngineMariaDB  = "mariadb"
)

// CloneSuffix is appended to the user name for the second user of the
// alternating-users strategy, as the AWS rotation templates do.
const CloneSuffix = "_clone"

// Strategy is how a secret is rotated (account.Strategy).
type Strategy = account.Strategy

// The strategies a database secret asks for.
const (
	// SingleUser changes the password of the secret's own user.
	SingleUser = account.SingleUser
	// AlternatingUsers switches between <user> and <user>_clone, the idle
	// one getting a new password from the master user.
	AlternatingUsers = account.AlternatingUsers
)

// Secret is a database secret in the JSON format of the AWS documentation.
// Fields the functions do not know are kept as they are by With.
type Secret struct {
	Engine               string
	Host                 string
	Port                 int
	Username             string
	Password             string
	DBName               string
	MasterARN            string
	DBInstanceIdentifier string
	DBClusterIdentifier  string
	// SSL is true unless the secret says "ssl": false.
	SSL bool
	// CABundle is the bare name of a PEM file shipped with the function,
	// trusted in addition to the system roots ("ca_bundle" field). Parse
	// refuses anything else: a secret may not make an arbitrary file of
	// the function's file system a trusted root, nor learn whether it
	// exists.
	CABundle string

	raw map[string]json.RawMessage
}

// Defaults are applied by Parse to fields the secret leaves out.
type Defaults struct {
	Port   int
	DBName string
}

// Parse reads a secret value. Its errors name the field and the problem,
// never a value: the value holds a password.
func Parse(value string, d Defaults) (*Secret, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errors.New("secret value is not a JSON object")
	}
	s := &Secret{raw: raw, SSL: true}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"engine", &s.Engine},
		{"host", &s.Host},
		{"username", &s.Username},
		{"password", &s.Password},
		{"dbname", &s.DBName},
		{"masterarn", &s.MasterARN},
		{"dbInstanceIdentifier", &s.DBInstanceIdentifier},
		{"dbClusterIdentifier", &s.DBClusterIdentifier},
		{"ca_bundle", &s.CABundle},
	} {
		v, ok := raw[f.name]
		if !ok || string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return nil, fmt.Errorf("secret field %q must be a string", f.name)
		}
	}
	if v, ok := raw["port"]; ok && string(v) != "null" {
		p, err := parsePort(v)
		if err != nil {
			return nil, err
		}
		s.Port = p
	}
	if v, ok := raw["ssl"]; ok && string(v) != "null" {
		b, err := parseBool(v)
		if err != nil {
			return nil, err
		}
		s.SSL = b
	}
	if s.Username == "" {
		return nil, errors.New(`secret field "username" is missing or empty`)
	}
	if _, ok := raw["password"]; !ok {
		return nil, errors.New(`secret field "password" is missing`)
	}
	if s.CABundle != "" && !account.BareFileName(s.CABundle) {
		return nil, errors.New(`secret field "ca_bundle" must be the bare name of a PEM file shipped with the function (no "/", "\" or ".."): a secret may not name any other file`)
	}
	if s.Port == 0 {
		s.Port = d.Port
	}
	if s.DBName == "" {
		s.DBName = d.DBName
	}
	s.Engine = strings.ToLower(strings.TrimSpace(s.Engine))
	return s, nil
}

// parsePort accepts a JSON number or a string of digits: both appear in the
// wild, the RDS console writing a number.
func parsePort(v json.RawMessage) (int, error) {
	text := string(v)
	if len(text) > 0 && text[0] == '"' {
		if err := json.Unmarshal(v, &text); err != nil {
			return 0, errors.New(`secret field "port" must be a number`)
		}
	}
	p, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil || p < 1 || p > 65535 {
		return 0, errors.New(`secret field "port" must be a number between 1 and 65535`)
	}
	return p, nil
}

func parseBool(v json.RawMessage) (bool, error) {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if b, err := strconv.ParseBool(s); err == nil {
			return b, nil
		}
	}
	return false, errors.New(`secret field "ssl" must be true or false`)
}

// Strategy returns the strategy the secret asks for: alternating users when
// it names a master secret.
func (s *Secret) Strategy() Strategy {
	if s.MasterARN != "" {
		return AlternatingUsers
	}
	return SingleUser
}

// BaseUser is the user name without the clone suffix: the original user of
// the alternating-users strategy.
func (s *Secret) BaseUser() string {
	return strings.TrimSuffix(s.Username, CloneSuffix)
}

// OtherUser is the user that the next version of an alternating-users
// secret names: the clone of the original, or the original of the clone.
func (s *Secret) OtherUser() string {
	if strings.HasSuffix(s.Username, CloneSuffix) {
		return s.BaseUser()
	}
	return s.Username + CloneSuffix
}

// With returns the secret's JSON with username and password replaced and
// every other field kept as it was.
func (s *Secret) With(username, password string) (string, error) {
	out := make(map[string]json.RawMessage, len(s.raw)+2)
	for k, v := range s.raw {
		out[k] = v
	}
	for k, v := range map[string]string{"username": username, "password": password} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		out[k] = bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return "", fmt.Errorf("encode secret: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// Raw returns the field name as stored, and whether it is present.
func (s *Secret) Raw(name string) (json.RawMessage, bool) {
	v, ok := s.raw[name]
	return v, ok
}
