package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secrets-rotation/secrets-rotation/internal/redact"
)

// attrs are the attributes of a role that a clone copies (LOGIN aside:
// a clone always logs in).
type attrs struct {
	super, inherit, createRole, createDB, replication, bypassRLS bool
	connLimit                                                    int
	// validUntil is rolvaliduntil as the session prints it; "" for none.
	validUntil string
}

// role is what a clone copies of a role: attributes and settings.
type role struct {
	attrs    attrs
	settings map[settingKey]string
}

// settingKey names one ALTER ROLE ... [IN DATABASE db] SET name: db is ""
// for a setting of every database.
type settingKey struct{ db, name string }

// readRole reads the attributes and settings of name; ok is false when no
// such role exists.
func readRole(ctx context.Context, q execer, name string) (r role, ok bool, err error) {
	var validUntil *string
	err = q.QueryRow(ctx, `SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
		rolconnlimit, rolvaliduntil::text FROM pg_roles WHERE rolname = $1`, name).Scan(
		&r.attrs.super, &r.attrs.inherit, &r.attrs.createRole, &r.attrs.createDB, &r.attrs.replication,
		&r.attrs.bypassRLS, &r.attrs.connLimit, &validUntil)
	if errors.Is(err, pgx.ErrNoRows) {
		return role{}, false, nil
	}
	if err != nil {
		return role{}, false, fmt.Errorf("read role %s: %w", name, err)
	}
	if validUntil != nil && *validUntil != "infinity" {
		r.attrs.validUntil = *validUntil
	}
	rows, err := q.Query(ctx, `SELECT COALESCE(d.datname, ''), s.setconfig FROM pg_db_role_setting s
		JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
		WHERE r.rolname = $1`, name)
	if err != nil {
		return role{}, false, fmt.Errorf("read settings of %s: %w", name, err)
	}
	defer rows.Close()
	r.settings = map[settingKey]string{}
	for rows.Next() {
		var db string
		var config []string
		if err := rows.Scan(&db, &config); err != nil {
			return role{}, false, fmt.Errorf("read settings of %s: %w", name, err)
		}
		for _, c := range config {
			n, v, found := strings.Cut(c, "=")
			if !found {
				continue
			}
			r.settings[settingKey{db, n}] = v
		}
	}
	if err := rows.Err(); err != nil {
		return role{}, false, fmt.Errorf("read settings of %s: %w", name, err)
	}
	return r, true, nil
}

// diff returns the ALTER ROLE options that turn the attributes of have
// into those of r. Only differences are written: PostgreSQL 15 asks a
// superuser to write REPLICATION or BYPASSRLS at all, even unchanged.
func (r role) diff(have role) []string {
	var out []string
	flag := func(want, got bool, name string) {
		if want != got {
			if want {
				out = append(out, name)
			} else {
				out = append(out, "NO"+name)
			}
		}
	}
	w, h := r.attrs, have.attrs
	flag(w.super, h.super, "SUPERUSER")
	flag(w.inherit, h.inherit, "INHERIT")
	flag(w.createRole, h.createRole, "CREATEROLE")
	flag(w.createDB, h.createDB, "CREATEDB")
	flag(w.replication, h.replication, "REPLICATION")
	flag(w.bypassRLS, h.bypassRLS, "BYPASSRLS")
	if w.connLimit != h.connLimit {
		out = append(out, "CONNECTION LIMIT "+strconv.Itoa(w.connLimit))
	}
	if w.validUntil != h.validUntil {
		v := w.validUntil
		if v == "" {
			v = "infinity"
		}
		out = append(out, "VALID UNTIL "+quoteLiteral(v))
	}
	return out
}

// copySettings makes the settings of clone (have) those of the original
// (want), writing each value the way pg_dump does: list settings
// (GUC_LIST_QUOTE) element by element, others as one string literal.
func copySettings(ctx context.Context, tx pgx.Tx, want, have map[settingKey]string, clone string) error {
	alter := func(k settingKey) string {
		s := "ALTER ROLE " + pgx.Identifier{clone}.Sanitize()
		if k.db != "" {
			s += " IN DATABASE " + pgx.Identifier{k.db}.Sanitize()
		}
		return s
	}
	for _, k := range sortedKeys(want) {
		v := want[k]
		if hv, ok := have[k]; ok && hv == v {
			continue
		}
		value, err := settingValue(k.name, v)
		if err != nil {
			return fmt.Errorf("setting %s of the original: %w", k.name, err)
		}
		if _, err := tx.Exec(ctx, alter(k)+" SET "+pgx.Identifier{k.name}.Sanitize()+" TO "+value); err != nil {
			return fmt.Errorf("copy setting %s to %s: %w", k.name, clone, err)
		}
	}
	for _, k := range sortedKeys(have) {
		if _, ok := want[k]; ok {
			continue
		}
		if _, err := tx.Exec(ctx, alter(k)+" RESET "+pgx.Identifier{k.name}.Sanitize()); err != nil {
			return fmt.Errorf("reset setting %s of %s: %w", k.name, clone, err)
		}
	}
	return nil
}

func sortedKeys(m map[settingKey]string) []settingKey {
	keys := make([]settingKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b settingKey) int {
		if c := strings.Compare(a.db, b.db); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	return keys
}

// sameSettings reports whether a and b hold the same settings, and if not
// the name of one that differs.
func sameSettings(a, b map[settingKey]string) (string, bool) {
	for _, k := range sortedKeys(a) {
		if v, ok := b[k]; !ok || v != a[k] {
			return k.name, false
		}
	}
	for _, k := range sortedKeys(b) {
		if _, ok := a[k]; !ok {
			return k.name, false
		}
	}
	return "", true
}

// listSettings are the settings PostgreSQL marks GUC_LIST_QUOTE: stored as
// a list of quoted elements, written back element by element (pg_dump's
// variable_is_guc_list_quote).
var listSettings = []string{"local_preload_libraries", "search_path", "session_preload_libraries",
	"shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"}

// settingValue is the SQL for the stored value v of setting name.
func settingValue(name, v string) (string, error) {
	if !slices.Contains(listSettings, strings.ToLower(name)) {
		return quoteLiteral(v), nil
	}
	elems, err := splitList(v)
	if err != nil {
		return "", err
	}
	if len(elems) == 0 {
		return "''", nil
	}
	for i, e := range elems {
		elems[i] = quoteLiteral(e)
	}
	return strings.Join(elems, ", "), nil
}

// splitList splits a stored list value: elements separated by commas,
// each either a double-quoted string ("" for a quote) or a run without
// spaces or commas, with spaces around them ignored (pg_dump's
// SplitGUCList).
func splitList(s string) ([]string, error) {
	isSpace := func(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v' }
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	skip()
	if i == len(s) {
		return nil, nil
	}
	var out []string
	for {
		if i == len(s) {
			return nil, errors.New("empty element in a list value")
		}
		var elem strings.Builder
		if s[i] == '"' {
			i++
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return nil, errors.New("unterminated quote in a list value")
				}
				elem.WriteString(s[i : i+j])
				i += j + 1
				if i < len(s) && s[i] == '"' {
					elem.WriteByte('"')
					i++
					continue
				}
				break
			}
		} else {
			start := i
			for i < len(s) && s[i] != ',' && !isSpace(s[i]) {
				i++
			}
			if i == start {
				return nil, errors.New("empty element in a list value")
			}
			elem.WriteString(s[start:i])
		}
		out = append(out, elem.String())
		skip()
		if i == len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, errors.New("malformed list value")
		}
		i++
		skip()
	}
}

// quoteLiteral returns s as an SQL string literal, the way PostgreSQL's
// quote_literal does: quotes doubled and, when s holds a backslash, an
// escape string (E'...') with backslashes doubled, which reads the same whatever
// standard_conforming_strings says. ALTER ROLE takes no bind parameters.
func quoteLiteral(s string) string {
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(q, `\`, `\\`) + "'"
	}
	return "'" + q + "'"
}

// withhold keeps back the text of a server error that quotes any part of
// secrets (six characters or more): a syntax error quotes the statement
// near the error, and a statement that sets a password holds its
// verifier. The SQLSTATE is kept.
func withhold(err error, secrets ...string) error {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return err
	}
	for _, field := range []string{pgErr.Message, pgErr.Detail, pgErr.Hint, pgErr.Where, pgErr.InternalQuery} {
		if redact.Quotes(field, secrets...) {
			return &pgconn.PgError{Severity: pgErr.Severity, Code: pgErr.Code,
				Message: "(message withheld: it quotes the statement, which holds a password verifier)"}
		}
	}
	return err
}
