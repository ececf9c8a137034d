// Package postgres is parley's store for deployments of several processes: any number of parley
// processes share one PostgreSQL database. Each Update is one transaction; a session's changes
// are serialized by a row lock on the session (LockSession), not by a writer in one process.
//
// Every commit is followed by a NOTIFY to the other processes of what it added (events, brain
// jobs, touched conversations), so the process that owns a session's partition, or an agent's
// live stream on another process, hears of it within milliseconds. Notifications are a fast
// path only: the background services rescan the tables, so a lost notification delays, never
// loses. They are sent after the commit, several commits' at once (see announce.go).
package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/parleyhq/parley"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/sqltx"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns this dialect's migrations.
func Migrations() ([]sqltx.Migration, error) {
	return sqltx.LoadMigrations(migrationFiles, "migrations")
}

var dialect = &sqltx.Dialect{
	Name:       "postgres",
	Numbered:   true,
	ForUpdate:  " FOR UPDATE",
	SkipLocked: " SKIP LOCKED",
	// Concurrent transactions create sessions: a sequence hands out their numbers.
	NextSessionNum: `SELECT nextval(pg_get_serial_sequence('sessions', 'num'))`,
	UniqueViolation: func(err error) bool {
		e, ok := errors.AsType[*pgconn.PgError](err)
		return ok && e.Code == "23505"
	},
	// IDs are uuid columns, so an ID from outside that is not a UUID fails to parse
	// (invalid_text_representation) where SQLite would find no row. Every other parameter is
	// bound from a typed Go value, so nothing else raises it.
	MalformedKey: func(err error) bool {
		e, ok := errors.AsType[*pgconn.PgError](err)
		return ok && e.Code == "22P02"
	},
}

// Store is a PostgreSQL store.Store.
type Store struct {
	url     string
	db      *sql.DB
	channel string // the NOTIFY channel of this deployment: one per schema
	node    string // this process, to ignore its own notifications
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}

	announcements chan string   // notification payloads of committed changes, to send
	closing       chan struct{} // closed by Close
	closeOnce     sync.Once
	announced     chan struct{} // closed when the announcer has stopped

	watchers store.Watchers
}

// Open connects to the database at url (postgres://...), with at most maxConns connections
// (plus one that listens), and starts listening for other processes' changes.
func Open(ctx context.Context, url string, maxConns int, log *slog.Logger) (*Store, error) {
	if maxConns < 1 {
		maxConns = 32
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConns)
	// Keep a quarter idle: enough for steady load, while a burst's extra connections go back
	// to PostgreSQL, whose connection limit all processes share.
	db.SetMaxIdleConns(max(1, maxConns/4))
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	// Deployments in different schemas of one database (tests do this) must not hear each other.
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: current schema: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s := &Store{url: url, db: db, channel: channelName(schema), node: parley.NewRandomID(), log: log,
		cancel: cancel, done: make(chan struct{}),
		announcements: make(chan string, 4*maxAnnounce), closing: make(chan struct{}), announced: make(chan struct{})}
	go s.listen(lctx)
	go s.announcer()
	return s, nil
}

// Migrate brings the schema up to date. An advisory lock keeps processes that start together
// from migrating at once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return sqltx.Migrate(ctx, s.db, dialect, ms, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7277253975)`)
		return err
	})
}

// CheckSchema refuses a schema this binary does not know.
func (s *Store) CheckSchema(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return sqltx.CheckSchema(ctx, s.db, ms)
}

func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	for attempt := 1; ; attempt++ {
		change, err := s.update(ctx, fn)
		if err != nil && retryable(err) && attempt < 4 {
			continue // a deadlock or serialization failure: the whole of fn runs again
		}
		if err == nil && !change.Empty() {
			s.watchers.Notify(change) // as SQLite does: a commit that adds nothing to follow is not announced
			s.queueAnnouncement(encodeNotification(s.node, change))
		}
		return err
	}
}

func (s *Store) update(ctx context.Context, fn func(store.Tx) error) (*store.Change, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback()
	t := sqltx.New(ctx, tx, dialect, nil)
	if err := run(fn, t); err != nil {
		return nil, err
	}
	change := t.Change()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	return change, nil
}

// run calls fn, turning a panic into an error as the SQLite store does, so a caller sees the same
// failure from either store (the deferred Rollback has undone fn's writes either way).
func run(fn func(store.Tx) error, t *sqltx.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("postgres: panic in transaction: %v", r)
		}
	}()
	return fn(t)
}

func retryable(err error) bool {
	e, ok := errors.AsType[*pgconn.PgError](err)
	return ok && (e.Code == "40001" || e.Code == "40P01")
}

func (s *Store) View(ctx context.Context, fn func(store.ReadTx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return fmt.Errorf("postgres: begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(sqltx.New(ctx, tx, dialect, nil))
}

func (s *Store) Watch(fn func(*store.Change)) { s.watchers.Add(fn) }

func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.announced
	s.cancel()
	<-s.done
	return s.db.Close()
}

// notification is the NOTIFY payload: what a commit added, by reference, and the signals it
// carried, whole (they are stored nowhere else). It must stay under
// PostgreSQL's 8000-byte limit, so large changes are split over several.
type notification struct {
	Node          string     `json:"n"`
	Events        [][]any    `json:"e,omitempty"` // [partition, session_id, session_seq]
	Jobs          [][]any    `json:"j,omitempty"` // [partition, session_id, session_seq]
	Conversations [][]string `json:"c,omitempty"` // [session_id, conversation_id]
	Signals       [][]string `json:"s,omitempty"` // [session_id, conversation_id, kind, data]
}

const maxPayload = 7000

func encodeNotification(node string, c *store.Change) []string {
	var out []string
	n := notification{Node: node}
	size := 0
	flush := func() {
		b, _ := json.Marshal(n)
		out = append(out, string(b))
		n = notification{Node: node}
		size = 0
	}
	add := func(approx int) {
		if size+approx > maxPayload {
			flush()
		}
		size += approx
	}
	for _, e := range c.Events {
		add(60)
		n.Events = append(n.Events, []any{e.Partition, e.SessionID, e.SessionSeq})
	}
	for _, j := range c.Jobs {
		add(60)
		n.Jobs = append(n.Jobs, []any{j.Partition, j.SessionID, j.SessionSeq})
	}
	for _, r := range c.Conversations {
		add(80)
		n.Conversations = append(n.Conversations, []string{r.SessionID, r.ConversationID})
	}
	for _, sg := range c.Signals {
		add(100 + len(sg.Kind) + 2*len(sg.Data)) // JSON in JSON: quotes are escaped
		n.Signals = append(n.Signals, []string{sg.SessionID, sg.ConversationID, sg.Kind, sg.Data})
	}
	flush()
	return out
}

func decodeNotification(payload string) (string, *store.Change, error) {
	var n notification
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return "", nil, err
	}
	c := &store.Change{Remote: true}
	ref := func(v []any) (int, string, int64, bool) {
		if len(v) != 3 {
			return 0, "", 0, false
		}
		p, ok1 := v[0].(float64)
		sid, ok2 := v[1].(string)
		seq, ok3 := v[2].(float64)
		return int(p), sid, int64(seq), ok1 && ok2 && ok3
	}
	for _, v := range n.Events {
		if p, sid, seq, ok := ref(v); ok {
			c.Events = append(c.Events, &parley.Event{Partition: p, SessionID: sid, SessionSeq: seq})
		}
	}
	for _, v := range n.Jobs {
		if p, sid, seq, ok := ref(v); ok {
			c.Jobs = append(c.Jobs, &parley.BrainJob{Partition: p, SessionID: sid, SessionSeq: seq})
		}
	}
	for _, v := range n.Conversations {
		if len(v) == 2 {
			c.Conversations = append(c.Conversations, store.ConversationRef{SessionID: v[0], ConversationID: v[1]})
		}
	}
	for _, v := range n.Signals {
		if len(v) == 4 {
			c.Signals = append(c.Signals, store.Signal{SessionID: v[0], ConversationID: v[1], Kind: v[2], Data: v[3]})
		}
	}
	return n.Node, c, nil
}

// listen receives other processes' notifications until ctx ends, reconnecting after failures.
// After a reconnect it tells watchers to rescan, since notifications sent meanwhile are lost.
func (s *Store) listen(ctx context.Context) {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for first := true; ctx.Err() == nil; first = false {
		if !first {
			s.watchers.Notify(&store.Change{Remote: true, Rescan: true})
		}
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("postgres: listening for changes failed; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		node, change, err := decodeNotification(n.Payload)
		if err != nil {
			s.log.Warn("postgres: undecodable notification", "err", err)
			continue
		}
		if node != s.node {
			s.watchers.Notify(change)
		}
	}
}

// channelName is the NOTIFY channel of a schema. Identifiers are at most 63 bytes, so a long
// schema name is replaced by a hash of it.
func channelName(schema string) string {
	name := "parley_changes_" + schema
	if len(name) > 63 {
		sum := sha256.Sum256([]byte(schema))
		name = "parley_changes_" + hex.EncodeToString(sum[:16])
	}
	return name
}
