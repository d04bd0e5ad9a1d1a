package e2e

import "syscall"

// memberSysProcAttr makes the kernel kill a member when the test binary dies
// (a panic on -timeout skips t.Cleanup), so no process outlives a run.
func memberSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
