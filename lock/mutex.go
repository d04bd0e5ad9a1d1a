package lock

import (
	"context"
	"errors"

	"github.com/concordkv/concord/session"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors a caller may branch on; the SDK wraps them with the lock's name
// and what it was doing.
var (
	// ErrLocked: TryLock found the lock held (or waited for) by another
	// participant.
	ErrLocked = errors.New("lock: held by another participant")
	// ErrLost: the participant's key was deleted, or its session ended,
	// while it held the lock (Err, Unlock) or waited for it (Lock). The
	// cause is wrapped too (session.ErrExpired, session.ErrKeyDeleted, ...).
	ErrLost = errors.New("lock: ownership lost")
	// ErrNotHeld: Unlock without a hold.
	ErrNotHeld = errors.New("lock: not held")
	// ErrInUse: Lock on a Mutex that holds the lock or has a call in
	// flight; a Mutex is one participant, make one per goroutine.
	ErrInUse = errors.New("lock: mutex in use")
	// ErrNoKey: Resume found no key of this session to take over.
	ErrNoKey = errors.New("lock: no key to resume")
	// ErrEmptyName: a lock needs a name.
	ErrEmptyName = errors.New("lock: empty name")
)

type options struct {
	value    string
	leaseKey bool
}

// Option configures NewMutex and NewRWMutex.
type Option func(*options)

// WithValue stores value in the participant's key (default empty), where
// `etcdctl get --prefix NAME/` shows it: who holds or waits, for example.
func WithValue(value string) Option { return func(o *options) { o.value = value } }

// WithLeaseKey names the participant's key after the session's lease alone,
// NAME/<lease-hex>, exactly as etcd's concurrency package does. A process
// restarted with the same lease (session.WithLease) then finds its key
// again: Lock takes it over, Resume requires it. The price: two Mutexes on
// one session and name share the key, so there must be only one.
func WithLeaseKey() Option { return func(o *options) { o.leaseKey = true } }

// Mutex is one participant of a distributed mutual-exclusion lock named by
// a key prefix. Participants are served in arrival order. A Mutex is safe
// for concurrent use, but it is a single participant: goroutines that want
// to exclude each other need a Mutex each (they may share a session).
type Mutex struct {
	p *participant
}

// NewMutex returns a participant of the lock name on session s. Its key is
// NAME/<lease-hex>-<random> (NAME/<lease-hex> with WithLeaseKey).
func NewMutex(s *session.Session, name string, opts ...Option) *Mutex {
	return &Mutex{p: newParticipant(s, name, opts)}
}

// Lock waits until the lock is this participant's and returns its fencing
// token. It fails with an error wrapping ErrLost as soon as the
// participant's key is deleted or its session ends while it waits, and
// with the context's error when ctx ends; either way it deletes its key.
func (m *Mutex) Lock(ctx context.Context) (Token, error) {
	return m.p.acquire(ctx, m.newKey(), m.p.prefix, true, acquireWait)
}

// TryLock takes the lock if no other participant holds or waits for it,
// and fails with ErrLocked otherwise.
func (m *Mutex) TryLock(ctx context.Context) (Token, error) {
	return m.p.acquire(ctx, m.newKey(), m.p.prefix, true, acquireTry)
}

// Resume takes over the key an earlier process left with the same lease
// (see WithLeaseKey and session.WithLease) and waits for the lock as Lock
// does; the token is that key's, so a holder resumes with its old token.
// Without such a key it fails with ErrNoKey.
func (m *Mutex) Resume(ctx context.Context) (Token, error) {
	return m.p.acquire(ctx, m.newKey(), m.p.prefix, true, acquireResume)
}

// Unlock deletes the participant's key if it is still its own (fenced on
// its create revision). If the hold had been lost meanwhile it returns an
// error wrapping ErrLost: whatever was done under the lock since then was
// not protected by it. On a request error the hold is kept; retry.
func (m *Mutex) Unlock(ctx context.Context) error { return m.p.release(ctx, nil) }

// Done returns a channel closed when the current hold ends (Unlock, or
// the key deleted, or the session ended); it is closed while not held.
func (m *Mutex) Done() <-chan struct{} { return m.p.done() }

// Err returns nil while the lock is held, an error wrapping ErrLost (and
// the cause) once the hold was lost, and ErrNotHeld otherwise.
func (m *Mutex) Err() error { return m.p.err() }

// IsOwner returns a comparison that holds while this participant holds the
// lock with its current token. Put it in a Txn's If to fence a write on
// the lock: a holder that lost the lock cannot write.
//
//	resp, err := cli.Txn(ctx).If(m.IsOwner()).Then(clientv3.OpPut(k, v)).Commit()
//	// !resp.Succeeded: the lock was lost
//
// Without a hold it returns a comparison that never holds.
func (m *Mutex) IsOwner() clientv3.Cmp { return m.p.isOwner() }

// Token returns the current hold's fencing token, 0 without a hold.
func (m *Mutex) Token() Token { return m.p.token() }

// Header returns the header of the response that showed the current hold
// first in the lock's queue (the lock was held at its revision), as etcd's
// concurrency.Mutex does; nil without a hold.
func (m *Mutex) Header() *pb.ResponseHeader { return m.p.header() }

// Key returns the current hold's key, "" without a hold.
func (m *Mutex) Key() string { return m.p.key() }

// Name returns the lock's name: its keys live under Name() + "/".
func (m *Mutex) Name() string { return m.p.name }

func (m *Mutex) newKey() string { return entryKey(m.p.prefix, m.p.s, m.p.opts.leaseKey) }
