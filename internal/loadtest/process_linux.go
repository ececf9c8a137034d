package loadtest

import "syscall"

// sysProcAttr makes the kernel kill a server the harness started if the harness dies first, so
// an interrupted run leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
