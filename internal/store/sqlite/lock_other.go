//go:build !unix

package sqlite

import "os"

// Files are not locked here: a server never knows it is alone, and waits for leases to lapse.
func lockExclusive(*os.File) (bool, error) { return false, nil }
func lockShared(*os.File) error            { return nil }
