//go:build unix

package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkNotLocked fails if another holder has path's bbolt file lock (bbolt
// takes an exclusive flock). raft-wal opens its meta database without a
// timeout, so without this check a second opener would wait forever.
func checkNotLocked(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%s is in use by another raft node", path)
		}
		return fmt.Errorf("probe lock on %s: %w", path, err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
