package account

import (
	"fmt"

	"context"
)

// master reads the master secret that cur's masterarn names and decides
// where its credentials may go; they go nowhere else, and only over
// verified TLS (the rotated secret's wish for plaintext does not apply to
// them; a family with a PlaintextServers variable lets the master secret
// turn TLS off at the servers the configuration lists, and nowhere else).
// It makes no connection.
//   - A master secret that names a server is used there, which must be the
//     rotated secret's server.
//   - One that names none is used where the driver's MasterLocator finds
//     it belongs (an RDS-managed master secret's tag), which must be the
//     rotated secret's server.
//   - Otherwise it is used at the rotated secret's server only when
//     MASTER_ALLOWED_SERVERS lists it: else a rotated secret could send the
//     master password to a server of its choosing.
//
// The master user may not be one of the users it rotates.
func (t *Target) master(ctx context.Context, cur Account, tw Twins) (Account, Location, error) {
	fail := func(err error) (Account, Location, error) { return Account{}, Location{}, err }
	value, err := t.readMaster(ctx, cur.MasterARN)
	if err != nil {
		return fail(err)
	}
	m, err := t.drv.Parse(ParseRequest{Value: value, Master: true})
	if err != nil {
		return fail(fmt.Errorf("master secret %s (field \"masterarn\"): %w", cur.MasterARN, err))
	}
	if m.Username == cur.Username || (cur.Strategy == AlternatingUsers && (m.Username == tw.Base || m.Username == tw.Clone)) {
		return fail(fmt.Errorf(`master secret %s (field "masterarn") names user %s, one of the users it would rotate`, cur.MasterARN, m.Username))
	}
	userLoc, err := t.drv.Locate(ctx, LocateRequest{Account: cur})
	if err != nil {
		return fail(err)
	}
	var loc Location
	if m.Server != "" {
		if loc, err = t.drv.Locate(ctx, LocateRequest{Account: m}); err != nil {
			return fail(fmt.Errorf("master secret %s (field \"masterarn\"): %w", cur.MasterARN, err))
		}
		if loc.Address() != userLoc.Address() {
			return fail(fmt.Errorf(`master secret %s (field "masterarn") names %s, the user secret (field "host") %s: refusing to use it`, cur.MasterARN, loc.Address(), userLoc.Address()))
		}
	} else {
		found := false
		if ml, ok := t.drv.(MasterLocator); ok {
			r, err := ml.LocateMaster(ctx, LocateMasterRequest{MasterARN: cur.MasterARN, Master: m})
			if err != nil {
				return fail(err)
			}
			if found = r.Found; found && serverKey(r.Host, r.Port) != userLoc.Address() {
				return fail(fmt.Errorf(`master secret %s (field "masterarn") belongs to %s (%s), the user secret (field "host") to %s: refusing to use it`,
					cur.MasterARN, serverKey(r.Host, r.Port), r.Source, userLoc.Address()))
			}
		}
		if !found && !t.cfg.masterMayUse(userLoc) {
			return fail(fmt.Errorf(`master secret %s (field "masterarn") names no server (no host, and nothing else says where it belongs) and MASTER_ALLOWED_SERVERS does not list %s, the server of the user secret (field "host"): refusing to send master credentials there`,
				cur.MasterARN, userLoc.Address()))
		}
		at := Location{Host: userLoc.Host, Port: userLoc.Port}
		if loc, err = t.drv.Locate(ctx, LocateRequest{Account: m, At: &at}); err != nil {
			return fail(fmt.Errorf("master secret %s (field \"masterarn\"): %w", cur.MasterARN, err))
		}
	}
	if loc.Plaintext && t.cfg.names.PlaintextServers == "" {
		return fail(fmt.Errorf(`master secret %s (field "masterarn") turns TLS off ("ssl": false): master credentials travel only over verified TLS`, cur.MasterARN))
	}
	if loc.Plaintext && !t.cfg.plaintextAllowed(loc) {
		return fail(fmt.Errorf("master secret %s (field \"masterarn\"): %w", cur.MasterARN, t.plaintextRefused(loc)))
	}
	return m, loc, nil
}
