// Package dbsecret is the secret format of the database rotation functions
// (the JSON fields of the AWS documentation: engine, host, port, username,
// password, dbname, masterarn, the RDS identifiers, ssl, ca_bundle), the
// choice of strategy it implies, and the endpoint a database driver
// connects to.
package dbsecret

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/secretjson"
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

	obj *secretjson.Object
}

// Defaults are applied by Parse to fields the secret leaves out.
type Defaults struct {
	Port   int
	DBName string
}

// Parse reads a secret value. Its errors name the field and the problem,
// never a value: the value holds a password.
func Parse(value string, d Defaults) (*Secret, error) {
	obj, err := secretjson.Parse(value)
	if err != nil {
		return nil, err
	}
	s := &Secret{obj: obj, SSL: true}
	if err := obj.Strings(map[string]*string{
		"engine":               &s.Engine,
		"host":                 &s.Host,
		"username":             &s.Username,
		"password":             &s.Password,
		"dbname":               &s.DBName,
		"masterarn":            &s.MasterARN,
		"dbInstanceIdentifier": &s.DBInstanceIdentifier,
		"dbClusterIdentifier":  &s.DBClusterIdentifier,
		"ca_bundle":            &s.CABundle,
	}); err != nil {
		return nil, err
	}
	if err := obj.Port("port", &s.Port); err != nil {
		return nil, err
	}
	if err := obj.Bool("ssl", &s.SSL); err != nil {
		return nil, err
	}
	if s.Username == "" {
		return nil, errors.New(`secret field "username" is missing or empty`)
	}
	if !obj.Has("password") {
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
	return s.obj.With(map[string]string{"username": username, "password": password})
}

// Raw returns the field name as stored, and whether it is present.
func (s *Secret) Raw(name string) (json.RawMessage, bool) {
	return s.obj.Raw(name)
}

// Fields gives access to the secret's other fields, for a target whose
// secret adds its own to the AWS database format.
func (s *Secret) Fields() *secretjson.Object { return s.obj }
