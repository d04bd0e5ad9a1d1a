//go:build !unix

package raftnode

// checkNotLocked cannot probe flock here; opening a directory that is in
// use may block.
func checkNotLocked(string) error { return nil }
