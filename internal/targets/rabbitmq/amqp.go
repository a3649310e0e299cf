package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// Probe logs in over AMQP 0-9-1 as user with password (SASL PLAIN, inside
// TLS unless ep.TLS is nil), opens ep.VHost and a channel, and closes
// them: exactly what an application does, so it proves what the
// applications need. The management API's whoami would prove less: it
// refuses users without a management tag (most application users) with
// the same 401 as a wrong password, and it checks no virtual host access.
//
// Its errors are *dbsecret.ConnError: ErrCannotLogIn when the broker
// refused the credentials (403 ACCESS_REFUSED) or the virtual host (530
// NOT_ALLOWED, also the answer to a user at its connection limit), else
// ErrCannotReach.
func Probe(ctx context.Context, ep Endpoint, user, password string) error {
	conn, err := dialAMQP(ctx, ep, user, password)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := probeChannel(conn, ep, user); err != nil {
		return err
	}
	return conn.Close()
}

// dialAMQP opens an AMQP connection as user (Probe's login, with the same
// errors), bounded by ctx and ep.Timeout for the whole login.
func dialAMQP(ctx context.Context, ep Endpoint, user, password string) (*amqp.Connection, error) {
	vhost := ep.VHost
	if vhost == "" {
		vhost = "/"
	}
	scheme := "amqps"
	if ep.TLS == nil {
		scheme = "amqp"
	}
	timeout := ep.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dial := ep.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	cfg := amqp.Config{
		SASL:            []amqp.Authentication{&amqp.PlainAuth{Username: user, Password: password}},
		Vhost:           vhost,
		TLSClientConfig: ep.TLS,
		Heartbeat:       10 * time.Second,
		Locale:          "en_US",
		Properties:      amqp.Table{"connection_name": "secrets-rotation probe"},
		// The dial follows ctx; the deadline also bounds the TLS and AMQP
		// handshakes (amqp091 clears it once the connection is open).
		Dial: func(network, addr string) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			conn, err := dial(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			deadline := time.Now().Add(timeout)
			if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
				deadline = dl
			}
			if err := conn.SetDeadline(deadline); err != nil {
				conn.Close()
				return nil, err
			}
			return conn, nil
		},
	}
	conn, err := amqp.DialConfig(scheme+"://"+ep.amqp()+"/", cfg)
	if err != nil {
		return nil, classify(err, user, ep)
	}
	return conn, nil
}

// probeChannel opens a channel on conn and closes it: the connection is
// usable, as an application's would be.
func probeChannel(conn *amqp.Connection, ep Endpoint, user string) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open a channel at %s as %s: %w", ep.amqp(), user, err)
	}
	if err := ch.Close(); err != nil {
		return fmt.Errorf("close the channel at %s as %s: %w", ep.amqp(), user, err)
	}
	return nil
}

func classify(err error, user string, ep Endpoint) error {
	kind := dbsecret.ErrCannotReach
	var aerr *amqp.Error
	if errors.As(err, &aerr) && (aerr.Code == amqp.AccessRefused || aerr.Code == amqp.NotAllowed) {
		kind = dbsecret.ErrCannotLogIn
	}
	return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: ep.amqp(), Err: err}
}
