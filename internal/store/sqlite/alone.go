package sqlite

import (
	"context"
	"fmt"
	"os"

	"github.com/parleyhq/parley/internal/store"
)

// ServeAlone tells whether this process is the only parley server on the database, and if so
// ends the leases left in it: they can only be a dead process's (one killed, say), and waiting
// the lease time for them would hold up the brain and the webhooks after every crash.
//
// Every server calls it at start and holds a shared lock on a file beside the database
// (PATH-serve.lock) until it closes the store; the kernel drops it when the process dies,
// however it dies. A server is alone when it can lock the file exclusively: no other server
// holds it. It forgets the leases under that exclusive lock, then shares it like the others, so
// a server started beside a living one, or after the first of two died, knows it is not alone
// and shares the work through leases, as on PostgreSQL. The CLI never takes the lock.
func (s *Store) ServeAlone(ctx context.Context) (bool, error) {
	f, err := os.OpenFile(s.path+"-serve.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("sqlite: server lock: %w", err)
	}
	alone, err := lockExclusive(f)
	if err == nil && alone {
		err = s.Update(ctx, func(tx store.Tx) error { return tx.ForgetLeases() })
	}
	if err == nil {
		err = lockShared(f) // from exclusive, or beside the others' shared locks
	}
	if err != nil {
		f.Close()
		return false, fmt.Errorf("sqlite: server lock: %w", err)
	}
	s.serveLock = f
	return alone, nil
}

// releaseServeLock gives the server lock up, if this store holds it.
func (s *Store) releaseServeLock() error {
	if s.serveLock == nil {
		return nil
	}
	err := s.serveLock.Close()
	s.serveLock = nil
	return err
}
