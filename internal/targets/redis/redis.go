// Package redis is the target of the redis function: Redis and Valkey ACL
// users, rotated by the account strategy layer (internal/account: single
// user, alternating users, the crash fallback, the trust rules) over this
// package's Driver. The driver parses the secret format (secret.go), logs
// in (github.com/redis/go-redis/v9, TLS verified whenever the endpoint
// carries a TLS configuration), tells a refused login from an unreachable
// server, and makes the ACL SETUSER changes a rotation needs (acl.go).
//
// An ACL user holds several passwords at once: a single user's setSecret
// adds the new password beside the old one and finishSecret removes those
// older than AWSPREVIOUS, so clients holding AWSCURRENT are never refused.
// ACL SETUSER is an admin's command, so every secret names a master secret.
//
// Passwords reach the server only as SHA-256 hashes ("#<hex>" rules), never
// in plaintext, so MONITOR, SLOWLOG and ACL LOG never show one. The one
// exception is logging in itself (AUTH), which Redis redacts in MONITOR and
// SLOWLOG.
//
// ElastiCache and MemoryDB manage users through their own AWS APIs
// (ModifyUser, with passwords in the request) and refuse ACL SETUSER on
// their clusters; no local emulator serves those APIs, so this package
// serves self-managed Redis 6+ and Valkey only.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// Conn is a session logged in as one ACL user. The ACL methods need a user
// allowed to run ACL GETUSER and ACL SETUSER (an admin, in practice +@all or
// at least +acl).
type Conn struct {
	client *goredis.Client
	conn   *goredis.Conn
	user   string
	ep     string
}

// Connect logs in to the server at ep as user with password (AUTH user
// password over ep.TLS, or plaintext when ep.TLS is nil) and checks the
// session with PING. Its errors are *dbsecret.ConnError: ErrCannotLogIn
// when the server refused the credentials (WRONGPASS, or NOAUTH), else
// ErrCannotReach (refused connection, timeout, certificate that does not
// verify).
//
// The login is one AUTH command sent by the connection hook, not go-redis's
// HELLO ... AUTH: when HELLO's authentication fails go-redis retries with
// AUTH, which would make one refused login count twice in the server's ACL
// LOG.
func Connect(ctx context.Context, ep dbsecret.Endpoint, user, password string) (*Conn, error) {
	return connect(ctx, ep, user, password, nil)
}

// connect is Connect with a hook that sees every command of the session,
// its login included (the crash tests kill the function after each).
func connect(ctx context.Context, ep dbsecret.Endpoint, user, password string, hook goredis.Hook) (*Conn, error) {
	opt := &goredis.Options{
		Addr:                  net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)),
		TLSConfig:             ep.TLS,
		Protocol:              2,
		DisableIdentity:       true, // no CLIENT SETINFO (unknown to Redis < 7.2)
		MaxRetries:            -1,   // one attempt: a retried login would be a second refusal
		DialerRetries:         1,    // one dial: a certificate that fails fails again
		PoolSize:              1,
		ContextTimeoutEnabled: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		OnConnect: func(ctx context.Context, cn *goredis.Conn) error {
			return cn.AuthACL(ctx, user, password).Err()
		},
	}
	if ep.Timeout > 0 {
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = ep.Timeout, ep.Timeout, ep.Timeout
	}
	client := goredis.NewClient(opt)
	if hook != nil {
		client.AddHook(hook) // before Conn(), which copies the hooks
	}
	c := &Conn{client: client, conn: client.Conn(), user: user, ep: ep.String()}
	if err := c.conn.Ping(ctx).Err(); err != nil && !isNoPerm(err) {
		c.Close()
		return nil, classify(err, user, ep)
	}
	return c, nil
}

// Probe logs in as user with password, runs PING and logs out: what a
// client of the cache does, and what testSecret proves. A user whose ACL
// does not allow PING still counts as logged in: the server judged the
// credentials good before it refused the command (that refusal is an ACL
// LOG entry with reason "command", not "auth").
func Probe(ctx context.Context, ep dbsecret.Endpoint, user, password string) error {
	c, err := Connect(ctx, ep, user, password)
	if err != nil {
		return err
	}
	return c.Close()
}

// Close ends the session.
func (c *Conn) Close() error {
	c.conn.Close()
	return c.client.Close()
}

// Probe runs PING on the session.
func (c *Conn) Probe(ctx context.Context) error {
	if err := c.conn.Ping(ctx).Err(); err != nil && !isNoPerm(err) {
		return fmt.Errorf("ping %s as %s: %w", c.ep, c.user, err)
	}
	return nil
}

// classify wraps a failed login in a *dbsecret.ConnError of the right kind.
// Redis answers a bad password, an unknown user and a disabled user alike
// with WRONGPASS; NOAUTH is the answer of a server that wants a password
// the client did not send.
func classify(err error, user string, ep dbsecret.Endpoint) error {
	kind := dbsecret.ErrCannotReach
	if isAuthError(err) {
		kind = dbsecret.ErrCannotLogIn
	}
	return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.String(), Err: err}
}

func isAuthError(err error) bool {
	var rerr goredis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH")
}

func isNoPerm(err error) bool {
	var rerr goredis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOPERM")
}
