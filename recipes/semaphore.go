package recipes

import (
	"context"
	"fmt"
	"sync"

	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Semaphore is one participant of a counting semaphore: at most limit
// participants hold a permit at once, served in arrival order. Permits are
// keys bound to the holders' session leases, so a holder that dies gives
// its permit back when its lease expires.
//
// How waiting works without waking everyone: participants are the keys
// under NAME/ in create-revision order, and the first limit of them hold.
// The first waiter watches the whole prefix for a deletion (any holder
// leaving frees it); every other waiter watches only the key just before
// its own, which is deleted if that waiter gives up and rewritten when it
// gets a permit: either way the one behind it looks again, and becomes the
// first waiter in time.
type Semaphore struct {
	s      *session.Session
	name   string
	prefix string
	limit  int
	closed chan struct{} // closed at construction: Done while not held

	mu   sync.Mutex    // guards the fields below; never held during a request
	busy bool          // an Acquire or Release is in flight
	held *session.Hold // the permit, nil while not held
	// releaseFailed: a Release request of the permit held failed, and may
	// have been applied anyway.
	releaseFailed bool
}

// NewSemaphore returns a participant of the semaphore name, which lets
// limit participants hold at once; every participant must use the same
// limit. Its key is NAME/<lease-hex>-<random-hex>.
func NewSemaphore(s *session.Session, name string, limit int) *Semaphore {
	sem := &Semaphore{s: s, name: name, prefix: name + "/", limit: limit, closed: make(chan struct{})}
	close(sem.closed)
	return sem
}

// Acquire waits for a permit. It fails with an error wrapping ErrLost as
// soon as the participant's key is deleted or its session ends, and with
// the context's error when ctx ends; either way it deletes its key.
func (sem *Semaphore) Acquire(ctx context.Context) error { return sem.acquire(ctx, true) }

// TryAcquire takes a permit if one is free and nobody waits; ErrNoPermit
// otherwise.
func (sem *Semaphore) TryAcquire(ctx context.Context) error { return sem.acquire(ctx, false) }

func (sem *Semaphore) acquire(ctx context.Context, wait bool) error {
	if sem.name == "" || sem.limit < 1 {
		return fmt.Errorf("semaphore %q limit %d: %w", sem.name, sem.limit, ErrInvalid)
	}
	sem.mu.Lock()
	if sem.busy || (sem.held != nil && sem.held.Err() == nil) {
		sem.mu.Unlock()
		return fmt.Errorf("semaphore %s: %w", sem.name, ErrInUse)
	}
	sem.busy, sem.held = true, nil
	sem.mu.Unlock()

	h, err := sem.take(ctx, wait)
	sem.mu.Lock()
	sem.busy, sem.held, sem.releaseFailed = false, h, false
	sem.mu.Unlock()
	if err != nil {
		return fmt.Errorf("semaphore %s: %w", sem.name, err)
	}
	return nil
}

func (sem *Semaphore) take(ctx context.Context, wait bool) (*session.Hold, error) {
	cli := sem.s.Client()
	key := participantKey(sem.prefix, sem.s)
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, "", clientv3.WithLease(sem.s.Lease())),
			clientv3.OpGet(sem.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
	if err != nil {
		return nil, withdraw(ctx, sem.s, key, nil, fmt.Errorf("enqueue %s: %w", key, err))
	}
	rev := resp.Header.Revision
	h := sem.s.Hold(key, rev, rev)
	// Every key counted was created no later than ours.
	if resp.Responses[1].GetResponseRange().Count <= int64(sem.limit) {
		return h, nil
	}
	if !wait {
		return nil, withdraw(ctx, sem.s, key, h, ErrNoPermit)
	}
	if err := sem.waitTurn(ctx, h); err != nil {
		return nil, withdraw(ctx, sem.s, key, h, err)
	}
	return h, nil
}

// waitTurn waits until h's key is among the first limit keys, then
// rewrites it so that the waiter behind it looks again.
func (sem *Semaphore) waitTurn(ctx context.Context, h *session.Hold) error {
	// Requests stop the moment the hold ends, even one blocked on a member
	// that cannot be reached; the loss is then the error to report.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.Context(), cancel)()
	if err := sem.waitTurnLoop(wctx, h); err != nil {
		if h.Err() != nil {
			return lost(h)
		}
		return err
	}
	return nil
}

func (sem *Semaphore) waitTurnLoop(ctx context.Context, h *session.Hold) error {
	cli := sem.s.Client()
	holders := clientv3.OpGet(sem.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(int64(sem.limit)))
	before := clientv3.OpGet(sem.prefix, append(clientv3.WithLastCreate(), clientv3.WithKeysOnly(),
		clientv3.WithMaxCreateRev(h.CreateRevision()-1))...)
	for {
		resp, err := retryRead(ctx, h, func() (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).If(h.Cmp()).Then(holders, before).Commit()
		})
		if err != nil {
			return fmt.Errorf("look for a permit: %w", err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("%w: %s deleted while waiting", ErrLost, h.Key())
		}
		top := resp.Responses[0].GetResponseRange().Kvs
		last := top[len(top)-1].CreateRevision
		if h.CreateRevision() <= last {
			// A holder now: wake the waiter watching this key.
			tresp, err := cli.Txn(ctx).If(h.Cmp()).
				Then(clientv3.OpPut(h.Key(), "", clientv3.WithLease(sem.s.Lease()))).Commit()
			if err != nil {
				return fmt.Errorf("announce permit: %w", err)
			}
			if !tresp.Succeeded {
				return fmt.Errorf("%w: %s deleted", ErrLost, h.Key())
			}
			return nil
		}
		pred := resp.Responses[1].GetResponseRange().Kvs[0]
		if pred.CreateRevision <= last {
			// First waiter: any deletion under the prefix may free a permit.
			_, err = waitEvent(ctx, cli, sem.prefix, true, resp.Header.Revision, h, isDelete)
		} else {
			_, err = waitEvent(ctx, cli, string(pred.Key), false, resp.Header.Revision, h, anyEvent)
		}
		if err != nil {
			return err
		}
	}
}

// Release gives the permit back. If it had been lost meanwhile, it
// returns an error wrapping ErrLost. On a request error the permit is
// kept; retry.
func (sem *Semaphore) Release(ctx context.Context) error {
	sem.mu.Lock()
	h := sem.held
	switch {
	case sem.busy:
		sem.mu.Unlock()
		return fmt.Errorf("semaphore %s: %w", sem.name, ErrInUse)
	case h == nil:
		sem.mu.Unlock()
		return fmt.Errorf("semaphore %s: %w", sem.name, ErrNotHeld)
	}
	sem.busy = true
	sem.mu.Unlock()

	resp, err := sem.s.Client().Txn(ctx).If(h.Cmp()).Then(clientv3.OpDelete(h.Key())).Commit()
	sem.mu.Lock()
	sem.busy = false
	retried := sem.releaseFailed
	if err == nil {
		sem.held = nil
	} else {
		sem.releaseFailed = true
	}
	sem.mu.Unlock()
	if err != nil {
		return fmt.Errorf("semaphore %s: release: %w", sem.name, err)
	}
	h.Stop()
	// A retry that finds the key gone after a failed attempt: that attempt
	// deleted it.
	if !resp.Succeeded && !retried {
		return fmt.Errorf("semaphore %s: release: %w: key already gone", sem.name, ErrLost)
	}
	return nil
}

// Done returns a channel closed when the permit is lost or released;
// closed while not held.
func (sem *Semaphore) Done() <-chan struct{} {
	sem.mu.Lock()
	defer sem.mu.Unlock()
	if sem.held == nil {
		return sem.closed
	}
	return sem.held.Done()
}

// Err is nil while the permit is held, wraps ErrLost once it was lost,
// and is ErrNotHeld otherwise.
func (sem *Semaphore) Err() error {
	sem.mu.Lock()
	defer sem.mu.Unlock()
	switch {
	case sem.held == nil:
		return ErrNotHeld
	case sem.held.Err() != nil:
		return lost(sem.held)
	}
	return nil
}

// IsHolder returns a comparison that holds while this participant holds
// its permit; put it in a Txn to fence a write on it. Without a permit it
// never holds.
func (sem *Semaphore) IsHolder() clientv3.Cmp {
	sem.mu.Lock()
	defer sem.mu.Unlock()
	if sem.held == nil {
		return clientv3.Compare(clientv3.CreateRevision(sem.prefix), "=", -1)
	}
	return sem.held.Cmp()
}
