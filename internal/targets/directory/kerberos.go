package directory

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/krberror"

	"github.com/secrets-rotation/secrets-rotation/internal/dbsecret"
)

// Kerberos error codes (RFC 4120) that name a reason.
const (
	kdcErrCPrincipalUnknown = 6
	kdcErrClientRevoked     = 18
	kdcErrKeyExpired        = 23
	kdcErrPreauthFailed     = 24
)

var krbCodeRE = regexp.MustCompile(`KRB Error: \((\d+)\)`)

// KerberosLogin obtains a ticket-granting ticket for principal (an Active
// Directory sAMAccountName) in k.Realm with password, from k's KDCs, with
// AES only; the ticket is discarded. It proves the password works for
// services that authenticate with Kerberos. Errors are *dbsecret.ConnError:
// ErrCannotLogIn when the KDC refused the credentials (a *Refusal says
// why), ErrCannotReach otherwise. gokrb5 takes no context: a cancelled ctx
// returns at once and the exchange ends on its own network timeout.
func KerberosLogin(ctx context.Context, k Kerberos, timeout time.Duration, principal, password string) error {
	user := principal + "@" + k.Realm
	where := "kerberos://" + k.Realm
	if !realmRE.MatchString(k.Realm) || len(k.KDCs) == 0 {
		return fmt.Errorf("Kerberos login of %s: realm %q with %d KDCs is not a usable configuration", user, k.Realm, len(k.KDCs))
	}
	for _, kdc := range k.KDCs {
		if !kdcRE.MatchString(kdc) {
			return fmt.Errorf("Kerberos login of %s: KDC %q is not host[:port]", user, kdc)
		}
	}
	if principal == "" || password == "" || strings.ContainsAny(principal, "@/\n") {
		return fmt.Errorf("Kerberos login at %s: principal %q or its password is not usable", where, principal)
	}
	// The configuration is written from validated names only (realmRE,
	// kdcRE), so no value can add a setting of its own.
	cfg, err := config.NewFromString(fmt.Sprintf(`[libdefaults]
  default_realm = %[1]s
  dns_lookup_kdc = false
  dns_lookup_realm = false
  udp_preference_limit = 1
  default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
  default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
  permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
  %[1]s = {
%[2]s  }
`, k.Realm, kdcLines(k.KDCs)))
	if err != nil {
		return fmt.Errorf("Kerberos login of %s: configuration: %w", user, err)
	}
	cl := client.NewWithPassword(principal, k.Realm, password, cfg, client.DisablePAFXFAST(true))
	done := make(chan error, 1)
	go func() {
		err := cl.Login()
		cl.Destroy()
		done <- err
	}()
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	t := time.NewTimer(2 * timeout) // gokrb5 dials each KDC with its own 5 s timeout
	defer t.Stop()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("no answer from the KDCs within %s", 2*timeout)
	}
	if err == nil {
		return nil
	}
	return classifyKerberos(err, user, where, password)
}

func kdcLines(kdcs []string) string {
	var b strings.Builder
	for _, k := range kdcs {
		fmt.Fprintf(&b, "    kdc = %s\n", k)
	}
	return b.String()
}

func classifyKerberos(err error, user, where, password string) error {
	reach := &dbsecret.ConnError{Kind: dbsecret.ErrCannotReach, User: user, Endpoint: where}
	var ke krberror.Krberror
	if !errors.As(err, &ke) {
		reach.Err = fmt.Errorf("%s", redact(err.Error(), password))
		return reach
	}
	text := redact(ke.Error(), password)
	r := &Refusal{Op: opKerberos, Account: user, Endpoint: where, Diagnostic: text}
	if m := krbCodeRE.FindStringSubmatch(text); m != nil {
		r.Code, _ = strconv.Atoi(m[1])
	}
	switch {
	case r.Code == kdcErrPreauthFailed:
		r.kind, r.Reason = ErrWrongPassword, "wrong password"
	case r.Code == kdcErrCPrincipalUnknown:
		r.kind, r.Reason = ErrNoSuchAccount, "no such principal"
	case r.Code == kdcErrClientRevoked:
		r.kind, r.Reason = ErrAccountUnusable, "the account is disabled or locked out"
	case r.Code == kdcErrKeyExpired:
		r.kind, r.Reason = ErrAccountUnusable, "the password has expired"
	case ke.RootCause == krberror.KRBMsgError && strings.Contains(text, "password/keytab incorrect"):
		// A KDC that needs no pre-authentication answers anyway; the
		// wrong password shows when the reply does not decrypt.
		r.kind, r.Reason = ErrWrongPassword, "wrong password (the KDC's reply did not decrypt)"
	case ke.RootCause == krberror.KDCError:
		r.Reason = "the KDC refused the login"
	default:
		reach.Err = fmt.Errorf("%s", text)
		return reach
	}
	kind := dbsecret.ErrCannotReach
	if r.kind != nil {
		kind = dbsecret.ErrCannotLogIn
	}
	return &dbsecret.ConnError{Kind: kind, User: user, Endpoint: where, Err: r}
}
