package postgres

import (
	"context"
	"time"
)

// Telling the other processes about commits.
//
// PostgreSQL serializes every transaction that NOTIFYs: it takes one lock for the whole database
// before the commit and releases it only once the commit is flushed to disk. Notifying inside
// each Update's transaction therefore made every commit of every process wait in one line for
// the disk, whatever the number of connections (measured: all but two of 32 connections waiting
// on "Lock: object", about 700 messages/s). So an Update's notification is sent after its
// commit, by one goroutine that puts whatever commits have queued into one transaction.
//
// This keeps what the package promises: a notification still follows its commit and is never
// sent for a rolled-back change, and one lost in a crash between the commit and the announcement
// delays the other processes until their next scan of the tables, like any lost notification.

// maxAnnounce bounds how many payloads one announcing transaction carries.
const maxAnnounce = 256

// queueAnnouncement queues a committed change's notifications for the announcer. It waits when
// the queue is full, so commits cannot outrun their notifications without bound.
func (s *Store) queueAnnouncement(payloads []string) {
	for _, p := range payloads {
		select {
		case s.announcements <- p:
		case <-s.closing:
			return
		}
	}
}

// announcer sends queued notifications until the store closes, then sends what is left.
func (s *Store) announcer() {
	defer close(s.announced)
	for {
		var batch []string
		closing := false
		select {
		case p := <-s.announcements:
			batch = append(batch, p)
		case <-s.closing:
			closing = true
		}
	fill:
		for len(batch) < maxAnnounce {
			select {
			case p := <-s.announcements:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			s.announce(batch)
		}
		if closing && len(batch) == 0 {
			return
		}
	}
}

// announce NOTIFYs the payloads in one transaction. The notifications only point at what is
// already committed, so this transaction need not wait for the disk (synchronous_commit off):
// it holds PostgreSQL's notification lock for a moment, not for a flush.
func (s *Store) announce(payloads []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS n(p, i) ORDER BY i`,
			s.channel, payloads); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		s.log.Warn("postgres: telling other processes about commits failed; they will find them on their next scan",
			"err", err, "notifications", len(payloads))
	}
}
