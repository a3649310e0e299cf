package rabbitmq

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// The secret's defaults: the AMQPS port, and the management API's HTTPS
// port, which self-managed brokers and Amazon MQ for RabbitMQ both serve
// (Amazon MQ serves the same API on 443 as well).
const (
	DefaultAMQPSPort      = 5671
	DefaultManagementPort = 15671
	DefaultVHost          = "/"
)

// CloneSuffix names the second user of the alternating strategy, as the
// AWS rotation templates name a database's.
const CloneSuffix = dbsecret.CloneSuffix

// Secret is a RabbitMQ user's secret: the fields of the AWS database
// secret format that apply to a broker ("engine", "host", "port",
// "username", "password", "masterarn", "ca_bundle"), and three of its own:
//
//	management_port  the management API's HTTPS port on the same host (15671)
//	vhost            the virtual host the AMQP login opens to prove the
//	                 credentials ("/")
//	strategy         "alternating-users" (the default) or "single-user"
//
// Every other field is kept as it is.
type Secret struct {
	*dbsecret.Secret
	ManagementPort int
	VHost          string
	// Strategy is what the secret asks for; SingleUser without a masterarn
	// (which the layer refuses: a RabbitMQ user cannot change its own
	// password).
	Strategy account.Strategy
}

// ParseSecret reads one version of a rotated secret, or with master a
// master secret (credentials, and optionally "host" and "management_port":
// where they may be used). The value is untrusted input: every field used
// is checked, and errors name the field and never a value.
func ParseSecret(value string, master bool) (*Secret, error) {
	db, err := dbsecret.Parse(value, dbsecret.Defaults{Port: DefaultAMQPSPort})
	if err != nil {
		return nil, err
	}
	s := &Secret{Secret: db, ManagementPort: DefaultManagementPort, VHost: DefaultVHost}
	if db.Engine != "" && db.Engine != "rabbitmq" {
		return nil, fmt.Errorf(`secret field "engine" names another engine than "rabbitmq"`)
	}
	if db.Password == "" {
		return nil, errors.New(`secret field "password" is empty`)
	}
	if !db.SSL {
		// Amazon MQ serves AMQP only over TLS, and so does the function:
		// no code path it does not test.
		return nil, errors.New(`secret field "ssl" is false: the rabbitmq function connects only over verified TLS`)
	}
	for _, f := range []string{"dbInstanceIdentifier", "dbClusterIdentifier"} {
		if _, ok := db.Raw(f); ok {
			return nil, fmt.Errorf("secret field %q names an RDS database: a RabbitMQ secret names its broker by \"host\"", f)
		}
	}
	if db.Host != "" && !validHost(db.Host) {
		return nil, errors.New(`secret field "host" must be a host name or IP address, without scheme, port or path`)
	}
	fields := db.Fields()
	if err := fields.Port("management_port", &s.ManagementPort); err != nil {
		return nil, err
	}
	if err := fields.String("vhost", &s.VHost); err != nil || s.VHost == "" {
		return nil, errors.New(`secret field "vhost" must be a non-empty string`)
	}
	if master {
		s.Strategy = account.SingleUser
		return s, nil
	}
	if db.Host == "" {
		return nil, errors.New(`secret field "host" is missing`)
	}
	var strategy string
	if err := fields.String("strategy", &strategy); err != nil {
		return nil, err
	}
	switch account.Strategy(strategy) {
	case "":
		s.Strategy = db.Strategy() // alternating users with a masterarn
	case account.AlternatingUsers, account.SingleUser:
		s.Strategy = account.Strategy(strategy)
	default:
		return nil, fmt.Errorf(`secret field "strategy" must be %q or %q`, account.AlternatingUsers, account.SingleUser)
	}
	return s, nil
}

// Server is how two versions compare: the same broker, ports and virtual
// host.
func (s *Secret) Server() string {
	if s.Host == "" {
		return ""
	}
	return fmt.Sprintf("%s management_port=%d vhost=%s",
		net.JoinHostPort(strings.ToLower(s.Host), strconv.Itoa(s.Port)), s.ManagementPort, s.VHost)
}

// validHost accepts a DNS name or an IP address: nothing that could carry a
// port, a path or credentials into a URL.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
