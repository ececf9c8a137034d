// Package sqlite is parley's embedded store: one SQLite file, nothing to install.
//
// Every write goes through one goroutine, the writer, which takes whatever Updates are waiting,
// runs them in one transaction and commits them together (group commit):
// one fsync covers many requests, which is what lets a single file keep up with a busy API while
// every accepted request is durable before it is answered. Reads run on a pool of read-only
// connections and never wait for the writer (WAL mode).
//
// It must never let two writers run at once inside one process.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"

	sqlite3 "github.com/mattn/go-sqlite3"

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
	Name:         "sqlite",
	LastInsertID: true,
	// The writer is the only one: the next number cannot be taken twice (and sessions_num is
	// unique should another process write).
	NextSessionNum: `SELECT coalesce(max(num), 0) + 1 FROM sessions`,
	UniqueViolation: func(err error) bool {
		e, ok := errors.AsType[sqlite3.Error](err)
		return ok && (e.ExtendedCode == sqlite3.ErrConstraintUnique || e.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
	},
}

// Dialect returns the dialect of SQLite stores, for tests that drive sqltx directly.
func Dialect() *sqltx.Dialect { return dialect }

// The pragmas every connection gets. Each is a decision:
var pragmas = []string{
	// Readers see a snapshot and never block the writer, nor it them.
	"PRAGMA journal_mode = WAL",
	// Every commit is fsynced before Update returns, so an accepted request survives a power
	// cut, not only a killed process. Group commit makes this cheap (measured: ~0.1 ms/fsync).
	"PRAGMA synchronous = FULL",
	// Another process (the CLI) holding the write lock makes us wait, not fail.
	"PRAGMA busy_timeout = 5000",
	// The schema's REFERENCES are rules, not comments.
	"PRAGMA foreign_keys = ON",
	"PRAGMA temp_store = MEMORY",
}

// Every connection gets the pragmas; each kind adds its own (checkpoint.go says why):
//   - the readers (driverName) nothing: they are query_only and never write, so never
//     checkpoint;
//   - the writer checkpoints inside a COMMIT only as a backstop, should the checkpointer fail,
//     and cuts back a WAL that grew past walKeepBytes when it restarts it;
//   - the checkpointer's RESTART waits only briefly for readers to leave the WAL.
const (
	driverName             = "parley-sqlite3"
	writerDriverName       = "parley-sqlite3-writer"
	checkpointerDriverName = "parley-sqlite3-checkpointer"
)

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: connectHook(func() []string { return nil })})
	sql.Register(writerDriverName, &sqlite3.SQLiteDriver{ConnectHook: connectHook(func() []string {
		return []string{"PRAGMA synchronous = NORMAL", // the syncer makes commits durable (sync.go)
			fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walBackstopFrames),
			fmt.Sprintf("PRAGMA journal_size_limit = %d", walKeepBytes)}
	})})
	sql.Register(checkpointerDriverName, &sqlite3.SQLiteDriver{ConnectHook: connectHook(func() []string {
		return []string{fmt.Sprintf("PRAGMA busy_timeout = %d", restartWait.Milliseconds())}
	})})
}

// connectHook runs the pragmas, then those extra returns (read when each connection opens, so
// that tests can change the variables they depend on).
func connectHook(extra func() []string) func(*sqlite3.SQLiteConn) error {
	return func(c *sqlite3.SQLiteConn) error {
		for _, p := range slices.Concat(pragmas, extra()) {
			if _, err := c.Exec(p, nil); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	}
}

// The writer's session cache holds at most this many sessions, whose contexts take at most
// this many bytes: about 1 KB per session beside its context.
const (
	maxCachedSessions     = 20000
	maxCachedContextBytes = 64 << 20
)

// maxBatch bounds how many Updates one commit takes, so the first caller of a batch does not
// wait behind an unbounded queue.
const maxBatch = 256

// Store is a SQLite store.Store.
type Store struct {
	wdb, rdb  *sql.DB
	ckdb      *sql.DB // the checkpointer's
	path      string
	serveLock *os.File // held while this process is the database's only server (ServeAlone)

	mu       sync.RWMutex // guards closed and sends on ops
	closed   bool
	ops      chan *op
	done     chan struct{}
	watchers store.Watchers

	checkpoints *checkpointer
	syncs       *syncer

	// Used by the writer goroutine only.
	prepared    map[string]*sql.Stmt // statements prepared on the writer's connection
	unprepared  []string             // queries a batch prepared for itself, to prepare for all
	sessions    *sqltx.SessionCache  // sessions as committed, valid while dataVersion holds
	dataVersion int64                // PRAGMA data_version when the cache was last known valid

	readMu    sync.Mutex
	preparing sync.WaitGroup       // background prepares of read statements, waited for by Close
	readStmt  map[string]*sql.Stmt // statements of reads; database/sql keeps one per reader connection
}

type op struct {
	ctx  context.Context
	fn   func(store.Tx) error
	errc chan error
}

// Open opens (creating if needed) the SQLite database at path and starts its writer. It does not
// migrate: call Migrate, or CheckSchema to refuse a schema this binary does not know. What goes
// wrong in the background (checkpoints) is logged to log; nil discards it.
func Open(path string, log *slog.Logger) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath()
	// BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way
	// because another process started writing.
	wdb, err := sql.Open(writerDriverName, dsn+"?_txlock=immediate")
	if err != nil {
		return nil, err
	}
	// One connection: SQLite allows one writer, and keeping it in one goroutine means no
	// SQLITE_BUSY inside the process.
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	rdb, err := sql.Open(driverName, dsn+"?_query_only=true")
	if err != nil {
		wdb.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	rdb.SetMaxOpenConns(n)
	rdb.SetMaxIdleConns(n)
	rdb.SetConnMaxLifetime(0)
	ckdb, err := sql.Open(checkpointerDriverName, dsn)
	if err != nil {
		wdb.Close()
		rdb.Close()
		return nil, err
	}
	s := &Store{
		wdb: wdb, rdb: rdb, ckdb: ckdb, path: path,
		ops:      make(chan *op, 4*maxBatch),
		prepared: map[string]*sql.Stmt{},
		sessions: sqltx.NewSessionCache(maxCachedSessions, maxCachedContextBytes),
		readStmt: map[string]*sql.Stmt{},
		done:     make(chan struct{}),
	}
	// Create the file (and the WAL) through the writer before any reader opens it.
	wal, err := openWAL(wdb)
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.checkpoints = newCheckpointer(ckdb, log)
	s.syncs = newSyncer(wal, log, s.watchers.Notify, s.failed)
	go s.writer()
	return s, nil
}

// openWAL opens, for the syncer, the WAL of the writer's database, under the name SQLite gives
// the database (its real path: SQLite follows symbolic links). It refuses a database that is
// not in WAL mode: the writer's commits would then be synced by nobody.
func openWAL(wdb *sql.DB) (*os.File, error) {
	ctx := context.Background()
	conn, err := wdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var mode string
	var tables int // a read makes SQLite create the WAL of a new database
	if err := conn.QueryRowContext(ctx, `SELECT (SELECT journal_mode FROM pragma_journal_mode),
		(SELECT count(*) FROM sqlite_master)`).Scan(&mode, &tables); err != nil {
		return nil, err
	}
	if mode != "wal" {
		return nil, fmt.Errorf("journal mode is %q, not wal", mode)
	}
	var name string
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*sqlite3.SQLiteConn)
		if !ok {
			return fmt.Errorf("writer's connection is a %T", dc)
		}
		name = c.GetFilename("main")
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Read-write: on some systems (Windows) a file opened read-only cannot be flushed.
	return os.OpenFile(name+"-wal", os.O_RDWR, 0)
}

// failed stops what would copy the WAL into the database once a sync has failed: the
// checkpointer, and (at Close) the connections, the last of which would checkpoint as it
// closes. The WAL's pages in memory may not be what the disk holds.
func (s *Store) failed() {
	s.checkpoints.halt()
}

// PathFromURL turns sqlite://./parley.db, sqlite:///var/lib/parley.db or sqlite:parley.db into
// a file path.
func PathFromURL(u string) (string, bool) {
	rest, ok := strings.CutPrefix(u, "sqlite:")
	if !ok {
		return "", false
	}
	rest = strings.TrimPrefix(rest, "//")
	return rest, rest != ""
}

// Migrate brings the schema up to date.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	// The writer connection is the only one allowed to write; BEGIN IMMEDIATE also keeps a
	// second process's migrator out. Its commits are not synced by themselves (sync.go).
	if err := sqltx.Migrate(ctx, s.wdb, dialect, ms, nil); err != nil {
		return err
	}
	// An Update is answered once everything committed before it is synced: an empty one
	// makes the migrations durable.
	return s.Update(ctx, func(store.Tx) error { return nil })
}

// CheckSchema refuses a schema this binary does not know.
func (s *Store) CheckSchema(ctx context.Context) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return sqltx.CheckSchema(ctx, s.rdb, ms)
}

func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	o := &op{ctx: ctx, fn: fn, errc: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errors.New("sqlite: store is closed")
	}
	s.ops <- o
	s.mu.RUnlock()
	// Wait for the commit even if ctx ends: the op may already be in a transaction, and the
	// caller must learn whether it committed.
	return <-o.errc
}

func (s *Store) View(ctx context.Context, fn func(store.ReadTx) error) error {
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin read: %w", err)
	}
	err = fn(sqltx.New(ctx, tx, dialect, func(q string) (*sql.Stmt, error) {
		if st := s.readStatement(q); st != nil {
			return tx.StmtContext(ctx, st), nil
		}
		return tx.PrepareContext(ctx, q)
	}))
	tx.Rollback()
	// What fn read may come from a commit not yet synced: nobody acts on it before it is
	// durable (sync.go).
	return errors.Join(err, s.syncs.wait(ctx))
}

// maxReadStatements bounds the cache of read statements: queries built with a varying number
// of placeholders would otherwise grow it without end. Past it, queries are compiled per call.
const maxReadStatements = 256

// readStatement returns the database-wide statement of a read query, or nil when there is
// none yet. database/sql compiles a database-wide statement once on each reader connection
// that runs it and keeps it there; compiling every query on every call cost about a tenth of
// the brain worker's time. A new query is prepared in the background: preparing needs a free
// connection, and the caller holds one already (waiting for another could wait forever).
func (s *Store) readStatement(q string) *sql.Stmt {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if st, ok := s.readStmt[q]; ok || s.readStmt == nil { // nil: the store is closed
		return st
	}
	if len(s.readStmt) < maxReadStatements {
		s.readStmt[q] = nil // being prepared
		s.preparing.Add(1)
		go func() {
			defer s.preparing.Done()
			st, err := s.rdb.PrepareContext(context.Background(), q)
			s.readMu.Lock()
			defer s.readMu.Unlock()
			switch {
			case err != nil:
				delete(s.readStmt, q) // the next call tries again
			case s.readStmt == nil:
				st.Close() // closed meanwhile
			default:
				s.readStmt[q] = st
			}
		}()
	}
	return nil
}

func (s *Store) Watch(fn func(*store.Change)) { s.watchers.Add(fn) }

func (s *Store) Ping(ctx context.Context) error {
	if err := s.syncs.err(); err != nil {
		return err
	}
	return s.View(ctx, func(tx store.ReadTx) error {
		_, err := tx.Integrations()
		return err
	})
}

// Close waits for the writer to commit what it was given, then closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	s.readMu.Lock()
	for _, st := range s.readStmt {
		if st != nil {
			st.Close()
		}
	}
	s.readStmt = nil
	s.readMu.Unlock()
	// A prepare in flight may be opening a connection, which creates files beside the
	// database: the database is closed only once none is.
	s.preparing.Wait()
	for _, st := range s.prepared {
		st.Close()
	}
	if err := s.syncs.err(); err != nil {
		// Closing the last connection would checkpoint the WAL into the database (failed says
		// why not): the process's exit closes them. The lock, a file of its own, goes: this
		// store writes nothing more.
		s.checkpoints.end()
		return errors.Join(err, s.releaseServeLock())
	}
	// The lock goes last: a server starting now must not take it while this one still writes.
	return errors.Join(s.closeDBs(), s.releaseServeLock())
}

// closeDBs closes the writer's connection last: when it is the database's last, SQLite
// checkpoints the WAL and removes it.
func (s *Store) closeDBs() error {
	var ckErr error
	if s.checkpoints != nil {
		ckErr = s.checkpoints.close()
	} else {
		ckErr = s.ckdb.Close()
	}
	return errors.Join(ckErr, s.rdb.Close(), s.wdb.Close())
}

// writer commits batches of Updates until the store is closed, and hands each to the syncer,
// which answers it once durable (sync.go).
func (s *Store) writer() {
	defer close(s.done)
	defer s.syncs.close()
	for o := range s.ops {
		batch := s.gather(o)
		seq := s.syncs.reserve() // before the batch can commit: readers may see it from then on
		c := s.commit(batch)
		c.seq = seq
		if afterCommit != nil {
			afterCommit()
		}
		s.syncs.add(c)
		s.checkpoints.committed()
		s.prepareForAll()
		s.checkpoints.restartWAL()
	}
}

// afterCommit, when set (by tests), runs after each batch commits and before it is synced.
var afterCommit func()

// gather returns the batch that starts with o. While the syncer is busy with earlier batches,
// it waits for minSyncedBatch Updates, or for the syncer to be done, whichever comes first; then
// it takes what else is waiting, up to maxBatch.
func (s *Store) gather(o *op) []*op {
	batch := append(make([]*op, 0, minSyncedBatch), o)
	for len(batch) < minSyncedBatch && s.syncs.busy() {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		case <-s.syncs.idle:
		}
	}
	for len(batch) < maxBatch {
		select {
		case o, ok := <-s.ops:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction, where one op's failure undoes only that op (see
// runBatch). Once the store has failed, it runs nothing.
func (s *Store) commit(batch []*op) *committed {
	c := &committed{ops: batch, errs: make([]error, len(batch))}
	if err := s.syncs.err(); err != nil {
		for i := range c.errs {
			c.errs[i] = err
		}
		return c
	}
	change, err := s.runBatch(batch, c.errs)
	for i := range batch {
		if err != nil && c.errs[i] == nil {
			c.errs[i] = err // the transaction failed: nothing of the batch committed
		}
	}
	if change != nil {
		c.wrote = true
		if !change.Empty() {
			c.change = change
		}
	}
	return c
}

func (s *Store) runBatch(batch []*op, errs []error) (*store.Change, error) {
	// An op that fails must undo only itself. Ops check before they write (an unknown session
	// is found by a read), and SQLite undoes a failed statement by itself, so an op that fails
	// has almost never changed anything: the batch goes on. The rare op that fails after it
	// wrote leaves half of itself in the transaction; then its failure is final, the
	// transaction is rolled back and the rest of the batch runs again (fn may run twice; the
	// store contract says so). This saves a savepoint per op, measured at ~9 µs of ~50.
	done := make([]bool, len(batch)) // ops whose outcome is final
	for rerun := 0; rerun < 2; rerun++ {
		change, again, err := s.tryBatch(batch, errs, done)
		if !again {
			return change, err
		}
	}
	// Ops keep failing after writing: no input may make the writer redo batches without end,
	// so the rest run one transaction each. Their changes are committed and told here, but
	// their watchers are called by the caller with the last change only; merge them.
	var all store.Change
	for i := range batch {
		if done[i] {
			continue
		}
		one := []*op{batch[i]}
		change, err := s.runAlone(one, errs[i:i+1])
		if err != nil && errs[i] == nil {
			errs[i] = err
		}
		if change != nil {
			all.Events = append(all.Events, change.Events...)
			all.Jobs = append(all.Jobs, change.Jobs...)
			all.Conversations = append(all.Conversations, change.Conversations...)
			all.Signals = append(all.Signals, change.Signals...)
		}
	}
	return &all, nil
}

// runAlone runs one op in its own transaction.
func (s *Store) runAlone(one []*op, errs []error) (*store.Change, error) {
	done := []bool{false}
	change, _, err := s.tryBatch(one, errs, done)
	return change, err
}

// tryBatch runs the ops not done in one transaction. again says it was rolled back because
// an op failed after writing, and must be tried again without it.
func (s *Store) tryBatch(batch []*op, errs []error, done []bool) (change *store.Change, again bool, err error) {
	ctx := context.Background() // callers' contexts must not abort a transaction others share
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: begin: %w", err)
	}
	prepare := s.statements(ctx, tx)
	t := sqltx.New(ctx, tx, dialect, prepare)
	if err := s.checkSessionCache(ctx, tx, prepare); err != nil {
		tx.Rollback()
		return nil, false, err
	}
	t.UseSessionCache(s.sessions)
	ok := 0
	for i, o := range batch {
		if done[i] {
			continue
		}
		if errs[i] = o.ctx.Err(); errs[i] != nil {
			done[i] = true
			continue
		}
		mark := t.Mark()
		t.BeginOp()
		if errs[i] = run(o.fn, t); errs[i] == nil {
			ok++
			continue
		}
		done[i] = true
		t.Rewind(mark)
		if t.Wrote() {
			tx.Rollback()
			for j := range batch {
				if !done[j] {
					errs[j] = nil
				}
			}
			return nil, true, nil
		}
	}
	if ok == 0 {
		tx.Rollback()
		return nil, false, nil
	}
	if err := tx.Commit(); err != nil {
		// Whether a failed COMMIT left anything behind is not certain: forget what is cached.
		s.sessions.Reset()
		return nil, false, fmt.Errorf("sqlite: commit: %w", err)
	}
	s.sessions.Commit(t)
	return t.Change(), false, nil
}

// checkSessionCache empties the session cache if another connection (another process: the CLI,
// a second server) committed since the writer last looked. It runs after BEGIN IMMEDIATE has
// taken the write lock, so nobody else can commit until this transaction ends.
//
// data_version counts per connection: should database/sql ever replace the writer's connection,
// the new one's count could match the old one's by chance. A temporary table, which lives as
// long as its connection, marks the connection the cache was checked on.
//
// The query is prepared once, like the batch's own statements: compiling it for every batch
// cost about 4% of parley's CPU under load.
func (s *Store) checkSessionCache(ctx context.Context, tx *sql.Tx, prepare sqltx.Preparer) error {
	var v, marked int64
	st, err := prepare(`SELECT (SELECT data_version FROM pragma_data_version),
		(SELECT count(*) FROM sqlite_temp_master WHERE name = 'parley_writer')`)
	if err == nil {
		err = st.QueryRowContext(ctx).Scan(&v, &marked)
	}
	if err != nil {
		return fmt.Errorf("sqlite: data_version: %w", err)
	}
	if v == s.dataVersion && marked == 1 {
		return nil
	}
	s.sessions.Reset()
	s.dataVersion = v
	if marked == 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE parley_writer (x)`); err != nil {
			return fmt.Errorf("sqlite: marking the writer's connection: %w", err)
		}
	}
	return nil
}

// run calls fn, turning a panic into an error so one bad request cannot stop the writer.
func run(fn func(store.Tx) error, t *sqltx.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sqlite: panic in transaction: %v", r)
		}
	}()
	return fn(t)
}

// statements returns the prepared statements of a batch's transaction. A query is compiled once
// on the writer's connection and reused by every batch after: a statement prepared on the
// database can only be prepared while the connection is free, so a query new to a batch is
// prepared on its transaction, and for all batches after it commits (prepareForAll). Compiling
// the hot queries again for every batch cost about 7% of the writer's time.
func (s *Store) statements(ctx context.Context, tx *sql.Tx) sqltx.Preparer {
	stmts := map[string]*sql.Stmt{}
	return func(q string) (*sql.Stmt, error) {
		if st, ok := stmts[q]; ok {
			return st, nil
		}
		var st *sql.Stmt
		if shared, ok := s.prepared[q]; ok {
			st = tx.StmtContext(ctx, shared) // the same compiled statement: the connection is the same
		} else {
			var err error
			if st, err = tx.PrepareContext(ctx, q); err != nil {
				return nil, err
			}
			s.unprepared = append(s.unprepared, q)
		}
		stmts[q] = st // the transaction's handles are closed by database/sql when it ends
		return st, nil
	}
}

// prepareForAll prepares on the writer's connection, now free, the queries the last batch had
// to prepare for itself. One that fails is prepared again by the next batch that runs it.
func (s *Store) prepareForAll() {
	for _, q := range s.unprepared {
		if _, ok := s.prepared[q]; ok {
			continue
		}
		if st, err := s.wdb.PrepareContext(context.Background(), q); err == nil {
			s.prepared[q] = st
		}
	}
	s.unprepared = s.unprepared[:0]
}
