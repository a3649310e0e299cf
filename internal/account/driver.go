package account

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"time"
)

// Strategy is how a secret is rotated. The driver's Parse says which one a
// secret asks for (the databases: alternating users when it names a master
// secret, as AWS's rotation templates do).
type Strategy string

// The strategies.
const (
	// SingleUser changes the password of the secret's own user: by the user
	// itself when the secret names no master secret, else by the master
	// user once the secret proved that it controls the user.
	SingleUser Strategy = "single-user"
	// AlternatingUsers switches between two users (<user> and its clone),
	// the master user setting a new password for the idle one, so the one
	// clients hold never changes.
	AlternatingUsers Strategy = "alternating-users"
)

// Driver is one system beneath the layer: a database engine, a directory,
// a cache, a broker. It parses its secret format, says where a version
// connects, logs in and sets passwords. It never decides which account to
// touch or where a credential may go: the layer does, the same way for
// every system. Every method takes a request struct and most return a
// struct, so that a field can be added later without breaking a driver.
type Driver interface {
	// Name names the system in logs and errors only; no behaviour is
	// switched on it.
	Name() string

	// Capabilities says what the driver's sessions can do; the layer
	// chooses how to set a password from it.
	Capabilities() Capabilities

	// Parse reads one version of a rotated secret or, with req.Master, the
	// master secret that a rotated secret's masterarn names. The value is
	// untrusted input: Parse checks every field the driver uses (types,
	// ranges; a CA file only as a bare file name, see BareFileName) and its
	// errors name the field and never a value. A rotated secret must name a
	// server; a master secret may hold only credentials (Account.Server
	// empty). Parse does no I/O.
	Parse(req ParseRequest) (Account, error)

	// Twins returns the two users of the alternating strategy, for either
	// of them. It refuses, with an error that names the user, a pair the
	// system cannot hold (a clone name longer than the system allows, say);
	// it never truncates. No I/O.
	Twins(req TwinsRequest) (Twins, error)

	// Locate says where an account's sessions connect: host and port after
	// any discovery the driver does (RDS, say), the TLS the secret asks
	// for, and the driver's own connection details. With req.At set, the
	// account names no server of its own (a master secret of credentials
	// only): Locate returns req.At's host and port with the account's own
	// options. Locate only reads; the layer decides whether a location may
	// be used.
	Locate(ctx context.Context, req LocateRequest) (Location, error)

	// Connect logs in. It uses exactly req.TLS (nil: plaintext) with no
	// fallback, and honours ctx and req.Timeout for the whole login,
	// handshake included. Its error wraps ErrCannotLogIn when the server
	// judged the credentials (wrong password, unknown user) and
	// ErrCannotReach otherwise (network, time-out, TLS), with errors.As-able
	// structure (a *ConnError), and never contains the password.
	Connect(ctx context.Context, req ConnectRequest) (Session, error)

	// NewValue returns the secret's value with the user name and password
	// replaced and every other field kept as it was. No I/O.
	NewValue(req NewValueRequest) (string, error)
}

// Capabilities are what a driver's sessions can do.
type Capabilities struct {
	// OwnPassword: a user's session can change its own password
	// (Session.SetOwnPassword). Without it, a single-user secret needs a
	// master secret: the master user sets the password, after the secret
	// proved that it controls the user.
	OwnPassword bool
	// SeveralPasswords: an account holds several passwords at once (Redis
	// ACL users). A single user's setSecret then adds the new password
	// beside the others (Session.AddPassword), and finishSecret, once
	// AWSCURRENT moved, removes every password but those of AWSCURRENT and
	// AWSPREVIOUS (Session.RemovePasswords): a single user rotates with no
	// refused login. Alternating users still replace the idle user's
	// password.
	SeveralPasswords bool
}

// Session is a logged-in connection. Every method honours ctx. A method
// that the driver's Capabilities do not announce may return
// errors.ErrUnsupported. Every change is idempotent: run twice, or run
// again after a run that died half-way, it converges on the same state.
type Session interface {
	// Probe proves that the session works, with the least privilege that
	// proves it (SELECT 1, PING, whoami). It changes nothing.
	Probe(ctx context.Context) error

	// SetOwnPassword changes the password of the session's own user
	// (Capabilities.OwnPassword).
	SetOwnPassword(ctx context.Context, req SetOwnPasswordRequest) error

	// SetPassword, on the master user's session, sets the password of
	// another user, which must exist.
	SetPassword(ctx context.Context, req SetPasswordRequest) error

	// EnsureClone, on the master user's session, makes req.Clone a user
	// with the privileges of req.Original, creating it when it is missing,
	// and sets its password. A clone half made by a run that died is
	// completed. A system that cannot create accounts refuses a missing
	// clone with an error that says both accounts must exist.
	EnsureClone(ctx context.Context, req EnsureCloneRequest) error

	// AddPassword adds a password to the user's, keeping the others
	// (Capabilities.SeveralPasswords). Adding one it has is no change.
	AddPassword(ctx context.Context, req AddPasswordRequest) error

	// RemovePasswords removes every password of the user except those in
	// req.Keep (Capabilities.SeveralPasswords). It never removes one of
	// req.Keep; removing none is no error.
	RemovePasswords(ctx context.Context, req RemovePasswordsRequest) error

	// Close ends the session.
	Close() error
}

// MasterLocator is an optional capability of a Driver: it finds where a
// master secret that names no server belongs, from something other than
// the rotated secret (the databases: the aws:rds tag of an RDS-managed
// master secret). When it does not find out, the layer uses such a master
// secret only at a server that MASTER_ALLOWED_SERVERS lists.
type MasterLocator interface {
	LocateMaster(ctx context.Context, req LocateMasterRequest) (LocateMasterResponse, error)
}

// Account is one version of a secret, as the driver parsed it.
type Account struct {
	Username string
	Password string
	// MasterARN names the master secret ("masterarn"); empty for none.
	MasterARN string
	// Strategy is the strategy the secret asks for.
	Strategy Strategy
	// Server names the server the secret points at as the secret writes it
	// (host and port, an RDS identifier...), in a form that two versions
	// compare by: the layer uses two versions together only when their
	// Server strings are equal. Empty for a master secret of credentials
	// only.
	Server string
	// Value is the driver's own parsed form, handed back to Locate and
	// NewValue.
	Value any
}

// Twins are the two users of the alternating strategy.
type Twins struct {
	Base, Clone string
}

// Other returns the twin of user.
func (t Twins) Other(user string) string {
	if user == t.Clone {
		return t.Base
	}
	return t.Clone
}

// Location is where a session connects.
type Location struct {
	Host string
	Port int
	// Plaintext: the secret asks for no TLS. The layer honours it for the
	// secret's own user only, never for master credentials.
	Plaintext bool
	// CABundle is the bare file name of a PEM file shipped with the
	// function that the secret asks to trust besides the system roots and
	// the function's CA bundle.
	CABundle string
	// Detail is the driver's own (a database name, a vhost), handed back
	// to Connect.
	Detail any
}

// Address is host:port with the host in lower case: how the layer
// compares servers and matches MASTER_ALLOWED_SERVERS.
func (l Location) Address() string { return serverKey(l.Host, l.Port) }

func serverKey(host string, port int) string {
	return net.JoinHostPort(strings.ToLower(host), strconv.Itoa(port))
}

// ParseRequest is the input of Driver.Parse.
type ParseRequest struct {
	Value string
	// Master: the value is a master secret.
	Master bool
}

// TwinsRequest is the input of Driver.Twins.
type TwinsRequest struct {
	// Username is either user of the pair.
	Username string
}

// LocateRequest is the input of Driver.Locate.
type LocateRequest struct {
	Account Account
	// At, when set, is where an account without a server of its own
	// connects (only Host and Port are used).
	At *Location
}

// ConnectRequest is the input of Driver.Connect.
type ConnectRequest struct {
	Location           Location
	Username, Password string
	// TLS is the verified TLS configuration to use; nil only for a user's
	// own login whose secret asks for plaintext.
	TLS *tls.Config
	// Timeout bounds the login; it never outlives ctx's deadline.
	Timeout time.Duration
	// Master: the credentials are the master user's (for the driver's logs
	// and errors; TLS is already decided).
	Master bool
}

// NewValueRequest is the input of Driver.NewValue.
type NewValueRequest struct {
	// Account is the version the new value derives from.
	Account            Account
	Username, Password string
}

// SetOwnPasswordRequest is the input of Session.SetOwnPassword.
type SetOwnPasswordRequest struct {
	Username string
	Password string
	// CurrentPassword is the one the session logged in with (a directory
	// needs it to change a password itself).
	CurrentPassword string
}

// SetPasswordRequest is the input of Session.SetPassword.
type SetPasswordRequest struct {
	Username, Password string
}

// EnsureCloneRequest is the input of Session.EnsureClone.
type EnsureCloneRequest struct {
	Original, Clone string
	// Password is the clone's.
	Password string
}

// AddPasswordRequest is the input of Session.AddPassword.
type AddPasswordRequest struct {
	Username, Password string
}

// RemovePasswordsRequest is the input of Session.RemovePasswords.
type RemovePasswordsRequest struct {
	Username string
	// Keep are the passwords that stay (AWSCURRENT's and AWSPREVIOUS's).
	Keep []string
}

// LocateMasterRequest is the input of MasterLocator.LocateMaster.
type LocateMasterRequest struct {
	MasterARN string
	Master    Account
}

// LocateMasterResponse is the output of MasterLocator.LocateMaster.
type LocateMasterResponse struct {
	// Found is false when the locator cannot tell where the master belongs.
	Found bool
	Host  string
	Port  int
	// Source names what said so, for errors ("RDS instance db-1").
	Source string
}
