package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/secrets-rotation/secrets-rotation/internal/rotation"
)

// Set makes the server accept the pending credentials. It logs in with what
// is expected to work first (AWSCURRENT; for the master strategies the
// proof and then the master user) and tries AWSPENDING only when that was
// refused, so that a rotation that goes as planned leaves no refused login
// in the server's log.
func (t *Target) Set(ctx context.Context, req *rotation.StepRequest) error {
	cur, pend, tw, err := t.load(ctx, req)
	if err != nil {
		return err
	}
	if err := t.canSet(cur, tw); err != nil {
		return err
	}
	log := req.Log.With(slog.String("user", pend.Username), slog.String("strategy", string(cur.Strategy)))
	if cur.MasterARN == "" {
		return t.setOwn(ctx, req, log, cur, pend)
	}
	return t.setByMaster(ctx, req, log, cur, pend, tw)
}

// setOwn is the single-user strategy without a master: the user changes
// its own password (or, where accounts hold several, adds the new one).
func (t *Target) setOwn(ctx context.Context, req *rotation.StepRequest, log *slog.Logger, cur, pend Account) error {
	s, err := t.loginAsUser(ctx, req, cur, pend)
	if err != nil {
		return err
	}
	defer s.Close()
	if s.label == labelPending {
		// A setSecret before this one set the password and died before
		// it returned: nothing is left to do.
		log.LogAttrs(ctx, slog.LevelInfo, "pending credentials already work: nothing to set")
		return nil
	}
	if t.caps.SeveralPasswords {
		err = s.AddPassword(ctx, AddPasswordRequest{Username: pend.Username, Password: pend.Password})
	} else {
		err = s.SetOwnPassword(ctx, SetOwnPasswordRequest{Username: pend.Username, Password: pend.Password, CurrentPassword: s.as.Password})
	}
	if err != nil {
		return fmt.Errorf("change password of %s: %w", pend.Username, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "password changed", slog.String("logged_in_with", s.label))
	return nil
}

// setByMaster has the master user set the pending password: of the same
// user (single user, where the user cannot or may not change it itself) or
// of the idle twin (alternating users). First the master secret's place is
// checked, without any connection; then the secret proves that it controls
// the user; only then does the master user log in.
func (t *Target) setByMaster(ctx context.Context, req *rotation.StepRequest, log *slog.Logger, cur, pend Account, tw Twins) error {
	master, loc, err := t.master(ctx, cur, tw)
	if err != nil {
		return err
	}
	var proof string
	if cur.Strategy == AlternatingUsers {
		proof, err = t.proveTwin(ctx, req, cur, pend, tw)
	} else {
		proof, err = t.proveSingle(ctx, req, cur, pend)
	}
	if err != nil {
		return err
	}
	if proof == labelPending {
		log.LogAttrs(ctx, slog.LevelInfo, "pending credentials already work: nothing to set")
		return nil
	}
	s, err := t.connect(ctx, loc, master.Username, master.Password, true)
	if err != nil {
		return fmt.Errorf("log in as master user %s: %w", master.Username, err)
	}
	defer s.Close()
	switch {
	case cur.Strategy == AlternatingUsers && pend.Username == tw.Clone:
		err = s.EnsureClone(ctx, EnsureCloneRequest{Original: tw.Base, Clone: tw.Clone, Password: pend.Password})
	case cur.Strategy == AlternatingUsers || !t.caps.SeveralPasswords:
		err = s.SetPassword(ctx, SetPasswordRequest{Username: pend.Username, Password: pend.Password})
	default:
		err = s.AddPassword(ctx, AddPasswordRequest{Username: pend.Username, Password: pend.Password})
	}
	if err != nil {
		return fmt.Errorf("set password of %s as %s: %w", pend.Username, master.Username, err)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "password set by the master user",
		slog.String("master_user", master.Username), slog.String("proved_by", proof))
	return nil
}

// proveSingle proves, before the master user changes the single user's
// password, that the secret controls that user: one of its versions logs
// in as it (the same search as loginAsUser, so crash recovery is the same).
func (t *Target) proveSingle(ctx context.Context, req *rotation.StepRequest, cur, pend Account) (string, error) {
	s, err := t.loginAsUser(ctx, req, cur, pend)
	if err != nil {
		return "", err
	}
	s.Close()
	return s.label, nil
}

// proveTwin pins the alternating strategy to users that the secret's
// writer already controls: before the master user changes the idle user's
// password, a version of the secret must log in as that user with its own
// password. That version is AWSPREVIOUS, which holds the idle user's last
// password. A secret that has never named the idle user (its first
// rotation) may only move from the base user to its clone, and AWSCURRENT,
// the base user's own credentials, must then log in: the master user makes
// the clone (or resets an existing one) with the base user's privileges,
// which the writer already has.
//
// It returns the label of the version that proved control; "AWSPENDING"
// when a setSecret before this one already set the password (it died
// before returning). Only that recovery makes the server log a refused
// login.
func (t *Target) proveTwin(ctx context.Context, req *rotation.StepRequest, cur, pend Account, tw Twins) (string, error) {
	prev, ok, err := req.Versions.Previous(ctx)
	if err != nil {
		return "", err
	}
	var proof *Account
	if ok {
		if a, err := t.parse(labelPrevious, prev.Value); err == nil && sameUser(pend, a) {
			proof = &a
		}
	}
	if proof == nil {
		if cur.Username != tw.Base || pend.Username != tw.Clone {
			return "", fmt.Errorf(`AWSCURRENT names %q (field "username"), the clone of %q, and no version of the secret proves control of %q (AWSPREVIOUS does not name it): refusing to let the master user set its password; start alternating rotation from the base user's credentials`,
				cur.Username, pend.Username, pend.Username)
		}
		s, err := t.login(ctx, cur)
		if err != nil {
			if errors.Is(err, ErrCannotLogIn) {
				return "", fmt.Errorf(`AWSCURRENT does not log in as %q (field "password"), so nothing proves that the secret's writer controls it: the master user changes nothing: %w`, cur.Username, err)
			}
			return "", err
		}
		s.Close()
		return labelCurrent, nil
	}
	s, err := t.login(ctx, *proof)
	if err == nil {
		s.Close()
		return labelPrevious, nil
	}
	if !errors.Is(err, ErrCannotLogIn) {
		return "", err
	}
	s, perr := t.login(ctx, pend)
	if perr == nil {
		s.Close()
		return labelPending, nil
	}
	if !errors.Is(perr, ErrCannotLogIn) {
		return "", perr
	}
	return "", fmt.Errorf(`neither AWSPREVIOUS nor AWSPENDING logs in as %q (field "password"), so nothing proves that the secret's writer controls it: the master user changes nothing: %w`, pend.Username, err)
}

// loggedIn is a session of the rotated user and the version it logged in
// with.
type loggedIn struct {
	Session
	label string  // "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS" or "version <id>"
	as    Account // the version, whose password the session used
}

// loginAsUser logs in with AWSCURRENT. When the server refuses it, a
// setSecret that already ran may have set AWSPENDING (label "AWSPENDING":
// nothing left to do); failing that AWSPREVIOUS (a rotation that set a
// password and then failed before finishSecret is undone by no one; the
// previous value is the last one that worked before it), and failing both
// one of the other versions the secret still holds (see
// loginWithOtherVersion). Only these recoveries can make the server log a
// refused login; a rotation that goes as planned makes none.
func (t *Target) loginAsUser(ctx context.Context, req *rotation.StepRequest, cur, pend Account) (loggedIn, error) {
	s, err := t.login(ctx, cur)
	if err == nil {
		return loggedIn{s, labelCurrent, cur}, nil
	}
	if !errors.Is(err, ErrCannotLogIn) {
		return loggedIn{}, err
	}
	s, perr := t.login(ctx, pend)
	if perr == nil {
		return loggedIn{s, labelPending, pend}, nil
	}
	if !errors.Is(perr, ErrCannotLogIn) {
		return loggedIn{}, perr
	}
	prev, ok, perr := req.Versions.Previous(ctx)
	if perr != nil {
		return loggedIn{}, perr
	}
	if ok {
		if a, perr := t.parse(labelPrevious, prev.Value); perr == nil && sameUser(cur, a) {
			s, perr := t.login(ctx, a)
			if perr == nil {
				return loggedIn{s, labelPrevious, a}, nil
			}
			if !errors.Is(perr, ErrCannotLogIn) {
				return loggedIn{}, perr
			}
		}
	}
	li, tried, oerr := t.loginWithOtherVersion(ctx, req, cur)
	if oerr != nil {
		return loggedIn{}, fmt.Errorf("cannot log in as %s with AWSCURRENT or AWSPREVIOUS (AWSPENDING is not set either) (%w); looking for another version: %w", cur.Username, err, oerr)
	}
	if li.Session != nil {
		return li, nil
	}
	return loggedIn{}, fmt.Errorf("cannot log in as %s with AWSCURRENT or AWSPREVIOUS (AWSPENDING is not set either), nor with %d other versions of the secret: %w", cur.Username, tried, err)
}
