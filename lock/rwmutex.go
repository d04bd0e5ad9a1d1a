package lock

import (
	"context"

	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RWMutex is one participant of a distributed reader/writer lock: readers
// share it, a writer holds it alone, and everyone is served in arrival
// order, so a waiting writer is not starved by readers arriving after it.
// Like Mutex, it is one participant holding at most one hold (read or
// write) at a time.
type RWMutex struct {
	p *participant
}

// NewRWMutex returns a participant of the reader/writer lock name on
// session s. Readers' keys are NAME/read/<lease-hex>-<random>, writers'
// NAME/write/<lease-hex>-<random> (no random part with WithLeaseKey).
func NewRWMutex(s *session.Session, name string, opts ...Option) *RWMutex {
	return &RWMutex{p: newParticipant(s, name, opts)}
}

// RLock waits until no writer that arrived earlier holds or waits, and
// returns the read hold's token (its key's create revision). Errors as for
// Mutex.Lock.
func (rw *RWMutex) RLock(ctx context.Context) (Token, error) {
	return rw.p.acquire(ctx, rw.newKey("read/"), rw.p.prefix+"write/", false, acquireWait)
}

// TryRLock takes a read hold if no writer holds or waits, ErrLocked
// otherwise.
func (rw *RWMutex) TryRLock(ctx context.Context) (Token, error) {
	return rw.p.acquire(ctx, rw.newKey("read/"), rw.p.prefix+"write/", false, acquireTry)
}

// Lock waits until every participant that arrived earlier, reader or
// writer, is gone, and returns the write hold's fencing token: strictly
// increasing across writers. Errors as for Mutex.Lock.
func (rw *RWMutex) Lock(ctx context.Context) (Token, error) {
	return rw.p.acquire(ctx, rw.newKey("write/"), rw.p.prefix, true, acquireWait)
}

// TryLock takes the write hold if no one else holds or waits, ErrLocked
// otherwise.
func (rw *RWMutex) TryLock(ctx context.Context) (Token, error) {
	return rw.p.acquire(ctx, rw.newKey("write/"), rw.p.prefix, true, acquireTry)
}

// RUnlock releases a read hold; ErrNotHeld if the hold is not a read hold.
func (rw *RWMutex) RUnlock(ctx context.Context) error {
	write := false
	return rw.p.release(ctx, &write)
}

// Unlock releases a write hold; ErrNotHeld if the hold is not a write hold.
func (rw *RWMutex) Unlock(ctx context.Context) error {
	write := true
	return rw.p.release(ctx, &write)
}

// Done returns a channel closed when the current hold ends; closed while
// not held.
func (rw *RWMutex) Done() <-chan struct{} { return rw.p.done() }

// Err is nil while held, wraps ErrLost once the hold was lost, and is
// ErrNotHeld otherwise.
func (rw *RWMutex) Err() error { return rw.p.err() }

// IsOwner returns a comparison that holds while the current hold (read or
// write) lasts; see Mutex.IsOwner.
func (rw *RWMutex) IsOwner() clientv3.Cmp { return rw.p.isOwner() }

// Token returns the current hold's token, 0 without a hold.
func (rw *RWMutex) Token() Token { return rw.p.token() }

// Key returns the current hold's key, "" without a hold.
func (rw *RWMutex) Key() string { return rw.p.key() }

func (rw *RWMutex) newKey(kind string) string {
	return entryKey(rw.p.prefix+kind, rw.p.s, rw.p.opts.leaseKey)
}
