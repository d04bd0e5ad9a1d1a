package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/concordkv/concord/session"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Token is a fencing token: the create revision of the holder's key.
// Successive holders of one lock get strictly increasing tokens, so a
// resource that remembers the highest token it has accepted can refuse a
// write from a holder that lost the lock without knowing it.
type Token int64

// participant is the state both Mutex and RWMutex keep about their one
// place in a lock's queue.
type participant struct {
	s      *session.Session
	name   string
	prefix string // name + "/": every key of the lock lives under it
	opts   options
	closed chan struct{} // closed at construction: Done while not held

	mu   sync.Mutex // guards busy and held; never held during a request
	busy bool       // an acquire or release is in flight
	held *entry     // the hold, nil while not held

	// stale is a key of ours given up but not yet deleted, retried first;
	// only the busy call touches it.
	stale string
}

func newParticipant(s *session.Session, name string, opts []Option) *participant {
	p := &participant{s: s, name: name, prefix: name + "/", closed: make(chan struct{})}
	close(p.closed)
	for _, o := range opts {
		o(&p.opts)
	}
	return p
}

// begin marks the participant busy for an acquire. A hold that was lost is
// dropped; a live hold or another call in flight is ErrInUse.
func (p *participant) begin() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy {
		return fmt.Errorf("%s: %w: a call is in flight", p.name, ErrInUse)
	}
	if p.held != nil {
		if p.held.hold.Err() == nil {
			return fmt.Errorf("%s: %w: held (token %d)", p.name, ErrInUse, p.held.token())
		}
		p.held.hold.Stop()
		p.held = nil
	}
	p.busy = true
	return nil
}

func (p *participant) end(held *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy, p.held = false, held
}

type acquireMode int

const (
	acquireWait   acquireMode = iota // Lock: wait for the turn
	acquireTry                       // TryLock: ErrLocked instead of waiting
	acquireResume                    // Resume: take over the lease key, then wait
)

// acquire queues key behind the keys under waitPrefix and waits for its
// turn as mode says.
func (p *participant) acquire(ctx context.Context, key, waitPrefix string, write bool, mode acquireMode) (Token, error) {
	if p.name == "" {
		return 0, ErrEmptyName
	}
	if mode == acquireResume && !p.opts.leaseKey {
		return 0, fmt.Errorf("lock %s: Resume needs WithLeaseKey", p.name)
	}
	if err := p.begin(); err != nil {
		return 0, err
	}
	e, err := p.acquireEntry(ctx, key, waitPrefix, mode)
	if e != nil {
		e.write = write
	}
	p.end(e)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	return e.token(), nil
}

func (p *participant) acquireEntry(ctx context.Context, key, waitPrefix string, mode acquireMode) (*entry, error) {
	if p.stale != "" {
		if err := deleteKey(ctx, p.s, p.stale); err != nil {
			return nil, fmt.Errorf("give up key left by an earlier call: %w", err)
		}
		p.stale = ""
	}
	emode := modeCreate
	if mode == acquireResume {
		emode = modeResume
	}
	e, first, err := enqueue(ctx, p.s, key, p.opts.value, waitPrefix, emode)
	if unsure := (errUnsure{}); errors.As(err, &unsure) {
		return nil, gaveUp(err, deleteKey(ctx, p.s, key), key, &p.stale)
	}
	if err != nil {
		return nil, err
	}
	if first {
		return e, nil
	}
	if mode == acquireTry {
		return nil, gaveUp(ErrLocked, e.abandon(ctx), key, &p.stale)
	}
	if err := e.waitTurn(ctx); err != nil {
		return nil, gaveUp(err, e.abandon(ctx), key, &p.stale)
	}
	return e, nil
}

// release deletes the hold's key; write says which kind of hold the
// caller means to release (RWMutex), nil for any.
func (p *participant) release(ctx context.Context, write *bool) error {
	p.mu.Lock()
	e := p.held
	switch {
	case p.busy:
		p.mu.Unlock()
		return fmt.Errorf("%s: %w: a call is in flight", p.name, ErrInUse)
	case e == nil || (write != nil && e.write != *write):
		p.mu.Unlock()
		return fmt.Errorf("%s: %w", p.name, ErrNotHeld)
	}
	p.busy = true
	p.mu.Unlock()

	deleted, err := e.release(ctx)
	if err != nil {
		p.end(e) // still held: the caller may retry
		return fmt.Errorf("%s: unlock: %w", p.name, err)
	}
	p.end(nil)
	if !deleted {
		cause := e.hold.Err()
		if cause == nil || errors.Is(cause, session.ErrHoldStopped) {
			cause = errors.New("key already gone")
		}
		return fmt.Errorf("%s: unlock: %w: %w", p.name, ErrLost, cause)
	}
	return nil
}

func (p *participant) current() *entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

func (p *participant) done() <-chan struct{} {
	if e := p.current(); e != nil {
		return e.hold.Done()
	}
	return p.closed
}

func (p *participant) err() error {
	e := p.current()
	switch {
	case e == nil:
		return ErrNotHeld
	case e.hold.Err() != nil:
		return e.lost()
	}
	return nil
}

func (p *participant) isOwner() clientv3.Cmp {
	if e := p.current(); e != nil {
		return e.hold.Cmp()
	}
	// No key has create revision -1: a comparison that never holds.
	return clientv3.Compare(clientv3.CreateRevision(p.prefix), "=", -1)
}

func (p *participant) token() Token {
	if e := p.current(); e != nil {
		return e.token()
	}
	return 0
}

func (p *participant) header() *pb.ResponseHeader {
	if e := p.current(); e != nil {
		return e.header
	}
	return nil
}

func (p *participant) key() string {
	if e := p.current(); e != nil {
		return e.key()
	}
	return ""
}
