// Package store is the contract between parley's domain and its databases. Two sibling packages
// implement it, store/sqlite and store/postgres, and one test suite (store/storetest) holds both
// to it.
//
// A Store never decides anything about sessions or conversations: the lifecycle rules live in
// package chat, which reads and writes through a Tx. A Store must never return (nil, nil) for a
// missing row: it returns a *parley.Error with code parley.ENotFound.
package store

import (
	"context"
	"sync"
	"time"

	"github.com/parleyhq/parley"
)

// Store opens transactions and tells watchers what each commit changed.
type Store interface {
	// Update runs fn in a read-write transaction and commits when fn returns nil; an error from
	// fn rolls back everything fn did and is returned as is. Update returns only once the
	// commit is durable and the watchers have been told of it.
	//
	// fn must do nothing but work through the Tx (no network, no sleeping): on SQLite many
	// Updates are committed together by one writer, and a slow fn holds all. fn may run more
	// than once (PostgreSQL runs it again after a deadlock), so it must not depend on effects
	// of an earlier run outside the Tx. After a Tx method fails, fn must return: on PostgreSQL
	// the transaction is aborted.
	Update(ctx context.Context, fn func(Tx) error) error

	// View runs fn in a read-only transaction that sees one consistent snapshot.
	View(ctx context.Context, fn func(ReadTx) error) error

	// Watch registers fn to be called after every commit with what it changed, including
	// commits of other processes sharing the database, when the store can see them. fn runs on
	// the store's own goroutine and must not block, nor call the store (on SQLite a View waits
	// for that goroutine).
	Watch(fn func(*Change))

	Ping(ctx context.Context) error
	Close() error
}

// Change is what one commit added: the outbox events and brain jobs to act on, and the
// conversations whose visible state changed (for the console's live updates).
type Change struct {
	Events        []*parley.Event
	Jobs          []*parley.BrainJob
	Conversations []ConversationRef
	// Remote is set when the change was committed by another process. Its Events and Jobs then
	// carry only their partition, session and SessionSeq: the receiver reads the rest.
	Remote bool
	// Rescan is set when changes of other processes may have been missed (the connection that
	// hears of them was lost): whoever keeps state from changes should read the tables again.
	Rescan bool
	// Signals are the passing notices the commit carried (Tx.Signal), for the console.
	Signals []Signal
}

// Empty reports whether c holds nothing a watcher follows (no event, job, conversation or
// signal): such a commit is not announced.
func (c *Change) Empty() bool {
	return len(c.Events) == 0 && len(c.Jobs) == 0 && len(c.Conversations) == 0 && len(c.Signals) == 0
}

// Watchers is a store's list of Watch functions: Add may run while Notify does.
type Watchers struct {
	mu  sync.RWMutex
	fns []func(*Change)
}

// Add registers fn.
func (w *Watchers) Add(fn func(*Change)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fns = append(w.fns, fn)
}

// Notify calls every function registered so far with c, in the caller's goroutine.
func (w *Watchers) Notify(c *Change) {
	w.mu.RLock()
	fns := w.fns
	w.mu.RUnlock()
	for _, fn := range fns {
		fn(c)
	}
}

// Signal is a passing notice about a conversation that is not stored anywhere, such as an agent
// typing: it rides on a commit and reaches the watchers of every process with it, or not at all
// when the commit fails. Small: on PostgreSQL it travels in a NOTIFY payload.
type Signal struct {
	SessionID      string
	ConversationID string
	Kind           string // what happened, e.g. "typing"
	Data           string // JSON, at most a few hundred bytes
}

// ConversationRef names a conversation whose state or messages changed.
type ConversationRef struct {
	SessionID      string
	ConversationID string
}

// ReadTx reads. Every method returns a *parley.Error with code ENotFound for a missing row.
type ReadTx interface {
	Integration(id string) (*parley.Integration, error)
	Integrations() ([]*parley.Integration, error)
	APIKeys(integrationID string) ([]*parley.APIKey, error)

	// Session returns a session with its current conversation.
	Session(id string) (*parley.Session, error)
	Conversation(id string) (*parley.Conversation, error)

	// Messages returns up to limit messages of a session with Seq > afterSeq, oldest first.
	Messages(sessionID string, afterSeq int64, limit int) ([]*parley.Message, error)
	// Message returns one message of a session.
	Message(sessionID, messageID string) (*parley.Message, error)

	// Agent returns an agent by ID, AgentByEmail by email (lower case).
	Agent(id string) (*parley.Agent, error)
	AgentByEmail(email string) (*parley.Agent, error)
	// Agents lists every agent, by name.
	Agents() ([]*parley.Agent, error)
	// AgentByToken returns the agent whose API token has the hash.
	AgentByToken(hash []byte) (*parley.Agent, error)
	// AgentByLogin returns the agent of the console login whose cookie has the hash, if the login
	// has not expired at now.
	AgentByLogin(hash []byte, now time.Time) (*parley.Agent, error)
	AgentTokens(agentID string) ([]*parley.AgentToken, error)

	// ConversationList returns conversations as the console lists them.
	ConversationList(f ConversationFilter) ([]*ConversationSummary, error)
	// ConversationCounts counts the open conversations of the integrations (all when empty) by
	// where they are: in the queue, with the agent agentID, and open at all.
	ConversationCounts(integrationIDs []string, agentID string) (ConversationCounts, error)
	// RecentMessages returns the newest limit messages of a session, oldest first.
	RecentMessages(sessionID string, limit int) ([]*parley.Message, error)

	// IdempotentResponse returns the response stored for an Idempotency-Key used by the
	// integration at or after since.
	IdempotentResponse(integrationID, key string, since time.Time) (status int, body []byte, err error)

	// Events lists outbox events, newest first, for operators.
	Events(f EventFilter) ([]*parley.Event, error)
	// PendingEvents returns the pending events of a session in SessionSeq order.
	PendingEvents(sessionID string) ([]*parley.Event, error)
	// PendingEventSessions returns sessions of the given partitions that have pending events.
	PendingEventSessions(partitions []int, limit int) ([]string, error)

	// PendingJobs returns the brain jobs of a session in SessionSeq order.
	PendingJobs(sessionID string) ([]*parley.BrainJob, error)
	// PendingJobSessions returns sessions of the given partitions that have brain jobs.
	PendingJobSessions(partitions []int, limit int) ([]string, error)

	// File returns a file, of whichever session.
	File(id string) (*parley.File, error)
	// Files returns those of the files named by ids that exist, in no particular order.
	Files(ids []string) ([]*parley.File, error)
}

// EventFilter selects outbox events. Zero fields select all.
type EventFilter struct {
	IntegrationID string
	State         string
	EventID       string
	Limit         int
}

// ConversationFilter selects conversations for the console.
type ConversationFilter struct {
	// IDs selects these conversations whatever their status. Without IDs, only open
	// conversations are selected.
	IDs []string
	// IntegrationIDs keeps conversations of these integrations; empty keeps all (a caller who
	// may see none must not ask).
	IntegrationIDs []string
	HandledBy      string // keeps conversations handled so (parley.HandledBy*); empty keeps all
	AssigneeID     string // keeps conversations of this agent; empty keeps all
	OldestFirst    bool   // order by updated_at ascending (a queue), not newest first
	Limit          int    // 0: no limit
}

// ConversationSummary is a conversation as the console's inbox shows it.
type ConversationSummary struct {
	Conversation      *parley.Conversation
	IntegrationName   string
	ExternalSessionID string
	SessionStatus     string
	Context           []byte           // the session's context (who the user is)
	Assignee          *parley.AgentRef // the agent who has it, when there is one
	Last              *parley.Message  // the session's newest message, nil when none
	Unread            int              // user messages of the conversation no agent has read
}

// ConversationCounts counts open conversations for an agent's inbox.
type ConversationCounts struct {
	Queue int `json:"queue"` // waiting for an agent
	Mine  int `json:"mine"`  // with the agent
	Open  int `json:"open"`  // open, whoever handles them
}

// Tx reads and writes. Writes that break a unique rule return a *parley.Error with code
// EConflict.
type Tx interface {
	ReadTx

	CreateIntegration(in *parley.Integration) error
	UpdateIntegration(in *parley.Integration) error
	CreateAPIKey(k *parley.APIKey) error
	// DeleteAPIKey removes one of the integration's keys: ENotFound if it has no key keyID.
	DeleteAPIKey(integrationID, keyID string) error

	// LockSession returns a session with its current conversation and holds it against
	// concurrent changes until the transaction ends. Every change to a session or its
	// conversations starts here, which is what serializes them across processes.
	LockSession(id string) (*parley.Session, error)
	CreateSession(s *parley.Session) error
	// UpdateSession writes a session's state; its context is written by SetSessionContext.
	// JobSeq, LastActivityAt and ExpiresAt only grow: a session reads as the larger of each
	// as written with it and as its last message carries it (UpdateSessionWithMessage).
	UpdateSession(s *parley.Session) error
	SetSessionContext(sessionID string, context []byte) error
	// ExpiringSessions returns up to limit active sessions whose deadline is at or before now,
	// earliest first, skipping sessions another transaction holds.
	ExpiringSessions(now time.Time, limit int) ([]string, error)

	CreateConversation(c *parley.Conversation) error
	UpdateConversation(c *parley.Conversation) error

	// InsertMessage stores a message and sets its Seq.
	InsertMessage(m *parley.Message) error
	// InsertMessageWithJob stores a user's message with the brain's work on it: a job, pending
	// until DeleteJob, whose Seq is the message's. It sets m.Seq and the job's Seq, SessionID,
	// ConversationID, MessageID and CreatedAt from m; the job's IntegrationID and Partition
	// must be its session's, which is where PendingJobs reads them.
	InsertMessageWithJob(m *parley.Message, job *parley.BrainJob) error
	// UpdateSessionWithMessage stores message m, with brain job j when j is not nil (as
	// InsertMessage and InsertMessageWithJob do), and session s as m changed it (as
	// UpdateSession does), in one call: a store may then keep what every message carries (the
	// session's JobSeq, LastActivityAt and ExpiresAt) in m's row instead of rewriting the
	// session's.
	UpdateSessionWithMessage(s *parley.Session, m *parley.Message, j *parley.BrainJob) error
	// MarkMessages records a receipt (parley.ReceiptRead or ReceiptDelivered) at `at` on the
	// messages of a session by the given authors that have none yet: those named by ids, and
	// all created at or before until when until is not zero. Read implies delivered. It
	// returns the IDs of the messages it changed.
	MarkMessages(sessionID, kind string, authors []string, ids []string, until, at time.Time) ([]string, error)

	// InsertEvent stores an outbox event and sets its Seq.
	InsertEvent(e *parley.Event) error
	// RecordAttempt stores the outcome of a delivery attempt: the event's State, Attempts,
	// NextAttemptAt, LastError, FinishedAt and AttemptLog (to which the caller has appended it).
	RecordAttempt(e *parley.Event) error
	// ReplayEvents makes failed events of an integration pending again (all of them, or the one
	// named) and returns them.
	ReplayEvents(integrationID, eventID string, now time.Time) ([]*parley.Event, error)
	// DeleteDeliveredEvents removes up to limit events delivered before `before`.
	DeleteDeliveredEvents(before time.Time, limit int) (int, error)

	// DeleteJob ends a brain job, answered or dropped; its message stays.
	DeleteJob(seq int64) error

	// Heartbeat records that a node (one parley process) is alive at now.
	Heartbeat(node string, startedAt, now time.Time) error
	// LiveNodes counts the nodes whose last heartbeat is at or after since.
	LiveNodes(since time.Time) (int, error)
	// DeleteNodes forgets nodes silent since before `before`.
	DeleteNodes(before time.Time) error
	// AcquirePartitions leases to node, until `until`, up to n partitions that are free or whose
	// lease ended before now, and returns them. A partition is never leased to two nodes.
	AcquirePartitions(node string, n int, now, until time.Time) ([]int, error)
	// RenewPartitions extends node's leases on partitions to until and returns those it still
	// holds (another node may have taken one whose lease ran out).
	RenewPartitions(node string, partitions []int, until time.Time) ([]int, error)
	// ReleasePartitions gives up node's leases on partitions.
	ReleasePartitions(node string, partitions []int) error
	// ForgetLeases ends every node's leases: for a process that knows it is the only one
	// serving the database (see sqlite.Store.ServeAlone), whatever leases remain are a dead
	// process's, and waiting for them to lapse would only delay the work they hold.
	ForgetLeases() error

	// SaveIdempotentResponse stores the response of a request made with an Idempotency-Key. A
	// response stored before since is replaced; one stored since is a conflict.
	SaveIdempotentResponse(integrationID, key string, status int, body []byte, at, since time.Time) error
	DeleteIdempotentResponses(before time.Time, limit int) (int, error)

	CreateFile(f *parley.File) error
	// SetFileState moves a file from state `from` to state `to` and sets its Size; moving to
	// parley.FileReady also sets its UploadedAt to at. It returns EConflict when the file is not
	// in state `from` (another request moved it first), ENotFound when there is no such file.
	SetFileState(id, from, to string, size int64, at time.Time) error
	// ReferenceFiles marks the ready files of a session named by ids as referenced (at `at`,
	// unless they already were) and returns how many of the ids named such a file. ids must not
	// repeat.
	ReferenceFiles(sessionID string, ids []string, at time.Time) (int, error)
	// FilesToDelete marks up to limit unreferenced files created before `before` for deletion
	// (parley.FileDeleting), skipping files another transaction holds, and returns up to limit
	// files so marked, including ones marked earlier whose deletion did not finish.
	FilesToDelete(before time.Time, limit int) ([]*parley.File, error)
	// DeleteFile removes the row of a file marked for deletion.
	DeleteFile(id string) error

	// SigningKey returns the secret stored under name, storing candidate first when there is
	// none, so that every process of a deployment signs with the same key.
	SigningKey(name string, candidate []byte) ([]byte, error)

	// CreateAgent stores an agent; an email already taken is a conflict.
	CreateAgent(a *parley.Agent) error
	CreateAgentToken(k *parley.AgentToken) error
	// DeleteAgentToken removes one of the agent's API tokens: ENotFound if it has no token
	// tokenID.
	DeleteAgentToken(agentID, tokenID string) error
	CreateAgentLogin(l *parley.AgentLogin) error
	// DeleteAgentLogin ends a console login; ending one that does not exist is not an error.
	DeleteAgentLogin(hash []byte) error
	// DeleteExpiredAgentLogins removes up to limit logins that expired before now.
	DeleteExpiredAgentLogins(now time.Time, limit int) (int, error)

	// Signal announces s to the watchers with this transaction's commit (see Signal).
	Signal(s Signal)
}
