package testcluster

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes a member die with the test process, so that a test
// binary killed by -timeout or a signal leaves no servers behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
