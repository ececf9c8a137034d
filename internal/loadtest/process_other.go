//go:build !linux

package loadtest

import "syscall"

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere an interrupted run
// may leave its server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }
