//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// lockExclusive locks f exclusively without waiting; false means another process holds a lock.
func lockExclusive(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// lockShared holds a shared lock on f, converting an exclusive one. It waits only while another
// process holds the exclusive lock, which lasts as long as forgetting the leases.
func lockShared(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
