//go:build !linux

package loadtest

import (
	"syscall"
	"time"
)

// sysProcAttr: only Linux can tie a child's life to its parent's; elsewhere an interrupted run
// may leave its server running.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// CPU is known on Linux only.
func (p *Process) CPU() (time.Duration, bool) { return 0, false }

// SelfCPU is known on Linux only.
func SelfCPU() (time.Duration, bool) { return 0, false }
