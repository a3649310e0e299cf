package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/secrets-rotation/secrets-rotation/internal/account"
)

// Driver is RabbitMQ beneath the account strategy layer. A user's session is
// an AMQP 0-9-1 connection (what applications open); the master user's is
// the management API, where every change is made. Only an administrator
// sets passwords, so a user cannot change its own: every secret names a
// master secret, and the layer rotates it with alternating users (the
// default) or, asked for, a single user whose password the master user
// replaces.
//
// The layer compares and allows servers by Location.Address(): here the
// broker's host and management API port, where master credentials go. The
// AMQP port and virtual host only carry a user's own login.
type Driver struct {
	// WrapTransport and DialContext, when set, are given to every
	// Endpoint (see there): tests count and crash the driver's calls.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	DialContext   func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ account.Driver = Driver{}

// Name implements account.Driver.
func (Driver) Name() string { return "rabbitmq" }

// Capabilities implements account.Driver: a RabbitMQ user can neither
// change its own password (only an administrator can) nor hold two.
func (Driver) Capabilities() account.Capabilities { return account.Capabilities{} }

// Parse implements account.Driver.
func (Driver) Parse(req account.ParseRequest) (account.Account, error) {
	s, err := ParseSecret(req.Value, req.Master)
	if err != nil {
		return account.Account{}, err
	}
	a := account.Account{Username: s.Username, Password: s.Password, Strategy: s.Strategy, Server: s.Server(), Value: s}
	if !req.Master {
		a.MasterARN = s.MasterARN
	}
	return a, nil
}

// Twins implements account.Driver: <user> and <user>_clone.
func (Driver) Twins(req account.TwinsRequest) (account.Twins, error) {
	base, _ := strings.CutSuffix(req.Username, CloneSuffix)
	if base == "" {
		return account.Twins{}, errors.New(`secret field "username" is only the clone suffix "_clone": no base user`)
	}
	return account.Twins{Base: base, Clone: base + CloneSuffix}, nil
}

// amqpDetail is Location.Detail: where the user's AMQP login goes.
type amqpDetail struct {
	Port  int
	VHost string
}

// Locate implements account.Driver: the host and management API port, and
// the AMQP port and virtual host as the detail. It does no I/O.
func (Driver) Locate(_ context.Context, req account.LocateRequest) (account.Location, error) {
	s := req.Account.Value.(*Secret)
	loc := account.Location{Host: s.Host, Port: s.ManagementPort, CABundle: s.CABundle,
		Detail: amqpDetail{Port: s.Port, VHost: s.VHost}}
	if req.At != nil {
		loc.Host, loc.Port = req.At.Host, req.At.Port
	}
	return loc, nil
}

// Connect implements account.Driver: the master user logs in to the
// management API (and must be an administrator); any other user opens an
// AMQP connection to its virtual host, as its applications do.
func (d Driver) Connect(ctx context.Context, req account.ConnectRequest) (account.Session, error) {
	detail := req.Location.Detail.(amqpDetail)
	ep := Endpoint{Host: req.Location.Host, APIPort: req.Location.Port, AMQPPort: detail.Port, VHost: detail.VHost,
		TLS: req.TLS, Timeout: req.Timeout, WrapTransport: d.WrapTransport, DialContext: d.DialContext}
	if req.Master {
		a, err := Connect(ctx, ep, req.Username, req.Password)
		if err != nil {
			return nil, err
		}
		return adminSession{a}, nil
	}
	conn, err := dialAMQP(ctx, ep, req.Username, req.Password)
	if err != nil {
		return nil, err
	}
	return &userSession{conn: conn, ep: ep, user: req.Username}, nil
}

// NewValue implements account.Driver.
func (Driver) NewValue(req account.NewValueRequest) (string, error) {
	return req.Account.Value.(*Secret).With(req.Username, req.Password)
}

// adminSession is the master user's session: the management API.
type adminSession struct{ a *Admin }

// Probe: the administrator's login already proved the session (whoami).
func (adminSession) Probe(context.Context) error { return nil }

func (s adminSession) SetPassword(ctx context.Context, req account.SetPasswordRequest) error {
	return s.a.SetPassword(ctx, req.Username, req.Password)
}

func (s adminSession) EnsureClone(ctx context.Context, req account.EnsureCloneRequest) error {
	return s.a.EnsureClone(ctx, req.Original, req.Clone, req.Password)
}

// SetOwnPassword: only an administrator sets passwords, through SetPassword.
func (adminSession) SetOwnPassword(context.Context, account.SetOwnPasswordRequest) error {
	return errors.ErrUnsupported
}

// AddPassword: a RabbitMQ user holds one password.
func (adminSession) AddPassword(context.Context, account.AddPasswordRequest) error {
	return errors.ErrUnsupported
}

// RemovePasswords: a RabbitMQ user holds one password.
func (adminSession) RemovePasswords(context.Context, account.RemovePasswordsRequest) error {
	return errors.ErrUnsupported
}

func (s adminSession) Close() error { s.a.Close(); return nil }

// userSession is a user's AMQP connection: it proves the credentials and
// changes nothing.
type userSession struct {
	conn *amqp.Connection
	ep   Endpoint
	user string
}

// Probe opens a channel and closes it, within ctx: amqp091 takes no
// context once connected, so a broker that stops answering has the
// connection closed under it.
func (s *userSession) Probe(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- probeChannel(s.conn, s.ep, s.user) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		s.conn.Close()
		<-done
		return fmt.Errorf("open a channel at %s as %s: %w", s.ep.amqp(), s.user, ctx.Err())
	}
}

func (*userSession) SetOwnPassword(context.Context, account.SetOwnPasswordRequest) error {
	return errors.ErrUnsupported
}

func (*userSession) SetPassword(context.Context, account.SetPasswordRequest) error {
	return errors.ErrUnsupported
}

func (*userSession) EnsureClone(context.Context, account.EnsureCloneRequest) error {
	return errors.ErrUnsupported
}

func (*userSession) AddPassword(context.Context, account.AddPasswordRequest) error {
	return errors.ErrUnsupported
}

func (*userSession) RemovePasswords(context.Context, account.RemovePasswordsRequest) error {
	return errors.ErrUnsupported
}

func (s *userSession) Close() error {
	if err := s.conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return err
	}
	return nil
}
