package backend

// Abandon simulates a crash for tests: stop without the final commit.
func (b *Backend) Abandon() error { return b.abandon() }

// FlushNow runs one flusher round synchronously, honouring seal boundaries.
func (b *Backend) FlushNow() error { return b.flush(false) }

// SwapWithoutCommit moves the pending buffer to "flushing" without
// committing it, so tests can read through all three layers.
func (b *Backend) SwapWithoutCommit() bool {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	if b.flushing != nil {
		return false
	}
	b.swapLocked()
	return true
}

// BufferedOps returns the number of writes not yet committed.
func (b *Backend) BufferedOps() int {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	n := b.pending.ops
	if b.flushing != nil {
		n += b.flushing.ops
	}
	return n
}
