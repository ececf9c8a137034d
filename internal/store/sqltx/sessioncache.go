package sqltx

import (
	"github.com/parleyhq/parley"
)

// SessionCache holds sessions, each with its current conversation, exactly as they were last
// committed, for a store whose write transactions all run one after another on one connection
// (the SQLite writer). Every request on a session starts with LockSession; with the cache that
// is a map lookup instead of a join read inside the writer, whose time bounds the throughput of
// the whole store (measured: a quarter of the writer's time per user message).
//
// Its entries follow the database, never the callers' objects: a session enters as a read
// found it, UpdateSession and SetSessionContext replay the columns they write, and every other
// write to a session or a conversation drops the session. Whatever a transaction learns reaches
// the cache only when it commits (Commit). Writes by another connection are the store's to
// notice (SQLite's data_version), and Reset forgets everything.
//
// It is not safe for concurrent use: the single writer is its only user.
type SessionCache struct {
	max, maxBytes int
	bytes         int // of the contexts held, which dominate an entry's size
	entries       map[string]*parley.Session
}

// NewSessionCache returns a cache of at most max sessions whose contexts take at most maxBytes
// in all (a context may be 256 KiB).
func NewSessionCache(max, maxBytes int) *SessionCache {
	return &SessionCache{max: max, maxBytes: maxBytes, entries: make(map[string]*parley.Session)}
}

// Reset forgets every session.
func (c *SessionCache) Reset() {
	clear(c.entries)
	c.bytes = 0
}

// Len returns the number of sessions held.
func (c *SessionCache) Len() int { return len(c.entries) }

// Commit takes in what the committed transaction t read and wrote.
func (c *SessionCache) Commit(t *Tx) {
	if t.cacheStale {
		c.Reset()
		return
	}
	for id, s := range t.sessions {
		c.remove(id)
		if s == nil || c.max <= 0 || len(s.Context) > c.maxBytes {
			continue
		}
		for len(c.entries) >= c.max || c.bytes+len(s.Context) > c.maxBytes {
			for old := range c.entries { // an arbitrary one: map order is unspecified
				c.remove(old)
				break
			}
		}
		c.entries[id] = s
		c.bytes += len(s.Context)
	}
}

func (c *SessionCache) remove(id string) {
	if s, ok := c.entries[id]; ok {
		c.bytes -= len(s.Context)
		delete(c.entries, id)
	}
}

// UseSessionCache makes the transaction read sessions through c and record for it what it
// learns. The caller calls c.Commit(t) after the transaction commits, and nothing if it does not.
func (t *Tx) UseSessionCache(c *SessionCache) {
	t.cache = c
	t.sessions = make(map[string]*parley.Session)
}

// cachedSession returns a copy of session id as the transaction sees it, or false when it must
// be read.
func (t *Tx) cachedSession(id string) (*parley.Session, bool) {
	s, ok := t.peekSession(id)
	if !ok {
		return nil, false
	}
	return cloneSession(s), true
}

// peekSession is cachedSession without the copy, for reading only; false without a cache.
func (t *Tx) peekSession(id string) (*parley.Session, bool) {
	if t.cache == nil || t.cacheStale {
		return nil, false // until the transaction ends, every read goes to the database
	}
	s, ok := t.sessions[id]
	if !ok {
		s, ok = t.cache.entries[id]
	}
	return s, ok && s != nil
}

// sessionRead records a session as the database holds it now, within this transaction.
func (t *Tx) sessionRead(s *parley.Session) {
	if t.cache != nil {
		t.sessions[s.ID] = cloneSession(s)
	}
}

// sessionWritten applies a write to the transaction's copy of session id: set changes the copy
// as the statement changed the row, or returns false when the copy can no longer be trusted.
func (t *Tx) sessionWritten(id string, set func(*parley.Session) bool) {
	if t.cache == nil {
		return
	}
	s, ok := t.cachedSession(id)
	if ok && set(s) {
		t.sessions[id] = s
		return
	}
	t.sessions[id] = nil
}

// sessionDropped says session id changed in a way the cache does not replay. No id (a
// conversation whose session is not known here) makes every cached session suspect.
func (t *Tx) sessionDropped(id string) {
	switch {
	case t.cache == nil:
	case id == "":
		t.cacheStale = true
	default:
		t.sessions[id] = nil
	}
}

// untrackedWrite is the safety net: a statement that writes sessions or conversations other
// than through the methods that keep the cache (which say so with tracked) makes every cached
// session suspect.
func (t *Tx) untrackedWrite(sessionTables bool) {
	if t.cache != nil && !t.tracked && sessionTables {
		t.cacheStale = true
	}
}

// containsFold reports whether q contains word (lower case ASCII) in any case, without
// allocating: it runs on every write statement.
func containsFold(q, word string) bool {
	for i := 0; i+len(word) <= len(q); i++ {
		j := 0
		for j < len(word) && q[i+j]|0x20 == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

// cloneSession copies s and its conversation, so a caller's changes never reach the cache. The
// context's bytes are shared, with no room to append into: nothing changes them in place.
func cloneSession(s *parley.Session) *parley.Session {
	c := *s
	c.Context = c.Context[:len(c.Context):len(c.Context)]
	if s.Conversation != nil {
		conv := *s.Conversation
		c.Conversation = &conv
	}
	return &c
}
