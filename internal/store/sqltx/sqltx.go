// Package sqltx implements store.Tx once, in SQL both SQLite and PostgreSQL understand. The
// sibling packages store/sqlite and store/postgres own connections, transactions, migrations and
// notifications; they hand this package an open *sql.Tx and a Dialect for the little that
// differs (placeholders, row locks, error codes).
//
// Queries are written with '?' placeholders. It must never start, commit or roll back a
// transaction itself.
package sqltx

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
)

// Dialect is what differs between the databases.
type Dialect struct {
	Name string
	// Numbered rewrites '?' placeholders to $1, $2, ... (PostgreSQL).
	Numbered bool
	// ForUpdate locks the rows a SELECT returns until the transaction ends; SkipLocked also
	// passes over rows another transaction holds. Empty where a single writer makes locks moot.
	ForUpdate  string
	SkipLocked string
	// UniqueViolation reports whether err is a unique-constraint violation.
	UniqueViolation func(error) bool
	// MalformedKey, when set, reports whether err says a key could not be parsed (a string that
	// is not a UUID, on PostgreSQL): such a key names no row.
	MalformedKey func(error) bool
	// LastInsertID says the driver returns a new row's integer key from Exec (SQLite), which is
	// cheaper than reading it back with RETURNING (PostgreSQL).
	LastInsertID bool
	// NextSessionNum is a query that returns the number for a new session (sessions.num).
	NextSessionNum string

	rebound sync.Map // query -> rewritten query
}

// rebind returns q with the dialect's placeholders.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered {
		return q
	}
	if r, ok := d.rebound.Load(q); ok {
		return r.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	r := b.String()
	d.rebound.Store(q, r)
	return r
}

// Preparer returns a prepared statement for a query, bound to the transaction. The SQLite writer
// supplies one so hot statements are compiled once per connection, not once per call.
type Preparer func(query string) (*sql.Stmt, error)

// Tx is a store.Tx over one database transaction.
type Tx struct {
	// wrote says the current op (see BeginOp) ran a statement that may have written.
	wrote bool

	ctx     context.Context
	tx      *sql.Tx
	d       *Dialect
	prepare Preparer
	change  store.Change
	states  map[string]sessionState // of the sessions this transaction read or wrote

	// The session cache (see UseSessionCache); all unused when cache is nil.
	cache      *SessionCache
	sessions   map[string]*parley.Session // what this transaction knows of sessions; nil: read it
	tracked    bool                       // the statement running keeps the cache itself
	cacheStale bool                       // an untracked statement wrote sessions or conversations
}

// New returns a Tx working in tx. prepare may be nil.
func New(ctx context.Context, tx *sql.Tx, d *Dialect, prepare Preparer) *Tx {
	return &Tx{ctx: ctx, tx: tx, d: d, prepare: prepare}
}

// Change returns what the transaction has added so far.
func (t *Tx) Change() *store.Change { return &t.change }

// Mark is a position in the transaction's change record.
type Mark struct{ events, jobs, convs, signals int }

// Mark returns the current position, to Rewind to when a savepoint is rolled back.
func (t *Tx) Mark() Mark {
	return Mark{len(t.change.Events), len(t.change.Jobs), len(t.change.Conversations), len(t.change.Signals)}
}

// Rewind forgets the changes recorded after m.
func (t *Tx) Rewind(m Mark) {
	t.change.Events = t.change.Events[:m.events]
	t.change.Jobs = t.change.Jobs[:m.jobs]
	t.change.Conversations = t.change.Conversations[:m.convs]
	t.change.Signals = t.change.Signals[:m.signals]
}

// Signal records s, to be announced with the commit.
func (t *Tx) Signal(s store.Signal) { t.change.Signals = append(t.change.Signals, s) }

// SetContext makes later statements run under ctx (the SQLite writer runs many callers' work in
// one transaction, each under its own context).
func (t *Tx) SetContext(ctx context.Context) { t.ctx = ctx }

// BeginOp starts an op of a shared transaction (the SQLite writer runs many callers' ops in
// one): Wrote then tells whether the op may have changed anything.
func (t *Tx) BeginOp() { t.wrote = false }

// Wrote reports whether the current op ran a statement that may have written.
func (t *Tx) Wrote() bool { return t.wrote }

// writing notes that q may write. Every statement goes through here, so none is missed.
func (t *Tx) writing(q string) error {
	t.note(classify(q))
	return nil
}

// writingFixed is writing for a query whose text is one of a fixed few (the prepared ones,
// which the SQLite writer also keeps per text), so its class can be remembered: classifying
// every statement's text anew cost about 1.5% of the writer. Queries built from their
// arguments must not come here, or the memory would grow with them.
func (t *Tx) writingFixed(q string) error {
	c, ok := classes.Load(q)
	if !ok {
		c, _ = classes.LoadOrStore(q, classify(q))
	}
	t.note(c.(stmtClass))
	return nil
}

// classes holds the class of each constant query.
var classes sync.Map // query -> stmtClass

// stmtClass is what the transaction must know of a statement before running it.
type stmtClass struct {
	write bool // it may write
	// it names the sessions or conversations table (see untrackedWrite)
	sessionTables bool
}

func classify(q string) stmtClass {
	if !isWrite(q) {
		return stmtClass{}
	}
	return stmtClass{write: true, sessionTables: containsFold(q, "sessions") || containsFold(q, "conversations")}
}

func (t *Tx) note(c stmtClass) {
	if c.write {
		t.wrote = true
		t.untrackedWrite(c.sessionTables)
	}
}

func isWrite(q string) bool {
	q = strings.TrimLeft(q, " \t\n")
	if len(q) < 6 {
		return false
	}
	switch strings.ToUpper(q[:6]) {
	case "INSERT", "UPDATE", "DELETE":
		return true
	}
	return false
}

// queryShaped runs a query whose text depends on its arguments (IN lists, optional filters).
// It is not prepared: the SQLite writer's statement cache would keep every shape.
func (t *Tx) queryShaped(q string, args ...any) (*sql.Rows, error) {
	if err := t.writing(q); err != nil {
		return nil, err
	}
	return t.tx.QueryContext(t.ctx, t.d.rebind(q), args...)
}

// execShaped is queryShaped for statements that return no rows.
func (t *Tx) execShaped(q string, args ...any) (sql.Result, error) {
	if err := t.writing(q); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(t.ctx, t.d.rebind(q), args...)
}

func (t *Tx) exec(q string, args ...any) (sql.Result, error) {
	if err := t.writingFixed(q); err != nil {
		return nil, err
	}
	if t.prepare != nil {
		st, err := t.prepare(q)
		if err != nil {
			return nil, err
		}
		return st.ExecContext(t.ctx, args...)
	}
	return t.tx.ExecContext(t.ctx, t.d.rebind(q), args...)
}

func (t *Tx) query(q string, args ...any) (*sql.Rows, error) {
	if err := t.writingFixed(q); err != nil {
		return nil, err
	}
	if t.prepare != nil {
		st, err := t.prepare(q)
		if err != nil {
			return nil, err
		}
		return st.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, t.d.rebind(q), args...)
}

func (t *Tx) queryRow(q string, args ...any) *sql.Row {
	if err := t.writingFixed(q); err != nil {
		// A *sql.Row cannot carry an error of ours; the statement is refused by running it on
		// a cancelled context, whose error Scan reports.
		ctx, cancel := context.WithCancelCause(t.ctx)
		cancel(err)
		return t.tx.QueryRowContext(ctx, t.d.rebind(q), args...)
	}
	if t.prepare != nil {
		st, err := t.prepare(q)
		if err != nil {
			// Preparing the same text succeeded before or will fail again in QueryRowContext,
			// which reports it through Scan.
			return t.tx.QueryRowContext(t.ctx, q, args...)
		}
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, t.d.rebind(q), args...)
}

// execTracked is exec for the statements that keep the session cache themselves.
func (t *Tx) execTracked(q string, args ...any) (sql.Result, error) {
	t.tracked = true
	defer func() { t.tracked = false }()
	return t.exec(q, args...)
}

// insert runs an INSERT into a table whose integer key is seq and returns the new key.
func (t *Tx) insert(q string, args ...any) (int64, error) {
	if t.d.LastInsertID {
		res, err := t.exec(q, args...)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	var seq int64
	err := t.queryRow(q+" RETURNING seq", args...).Scan(&seq)
	return seq, err
}

// wrap names the failed operation and translates the database's errors into the domain's.
func (t *Tx) wrap(op string, err error, notFound string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows), t.d.MalformedKey != nil && t.d.MalformedKey(err):
		return parley.Errorf(parley.ENotFound, "%s not found", notFound)
	case t.d.UniqueViolation != nil && t.d.UniqueViolation(err):
		return parley.Errorf(parley.EConflict, "%s already exists", notFound)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// in returns "?, ?, ?" for n placeholders.
func in(n int) string {
	if n == 0 {
		return "NULL" // IN (NULL) matches nothing, and is valid SQL
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}
