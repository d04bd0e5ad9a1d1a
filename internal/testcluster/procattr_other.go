//go:build !linux

package testcluster

import "os/exec"

// dieWithParent is Linux-only; elsewhere t.Cleanup alone stops members.
func dieWithParent(*exec.Cmd) {}
