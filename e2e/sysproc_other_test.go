//go:build !linux

package e2e

import "syscall"

// memberSysProcAttr has no parent-death signal outside Linux: members are
// killed by t.Cleanup only.
func memberSysProcAttr() *syscall.SysProcAttr { return nil }
