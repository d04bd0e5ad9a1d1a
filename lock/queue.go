package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/concordkv/concord/session"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The participants of a lock are the keys under its prefix, served in the
// order of their create revisions: a participant holds the lock when no key
// it must wait for was created before its own. Each waiter watches only the
// key created just before its own among those (its predecessor), so a
// release wakes one waiter, not all of them.

// entry is one participant's key in a lock's queue.
type entry struct {
	s          *session.Session
	hold       *session.Hold
	waitPrefix string // the keys this entry waits for
	write      bool   // RWMutex: a write entry
	// header is the header of the response that showed the entry first in
	// its queue: the lock was held at its revision.
	header *pb.ResponseHeader

	releaseFailed bool // a release request failed; touched only by the busy call
}

func (e *entry) key() string  { return e.hold.Key() }
func (e *entry) token() Token { return Token(e.hold.CreateRevision()) }

// entryKey names a new participant's key under prefix: the session's lease
// in hex (as etcd's concurrency package names it) and, unless leaseKey, a
// random suffix so that Mutexes sharing a session do not share a key.
func entryKey(prefix string, s *session.Session, leaseKey bool) string {
	if leaseKey {
		return fmt.Sprintf("%s%x", prefix, int64(s.Lease()))
	}
	return fmt.Sprintf("%s%x-%016x", prefix, int64(s.Lease()), rand.Uint64())
}

type enqueueMode int

const (
	// modeCreate creates the key, or takes it over if this session's lease
	// already owns it (a lease key left by an earlier process).
	modeCreate enqueueMode = iota
	// modeResume takes over the key; ErrNoKey if it does not exist.
	modeResume
)

// enqueue puts key, bound to the session's lease, at the end of the queue
// and reports whether it is first among the keys under waitPrefix (no key
// there was created before it). One round trip, two when a taken-over key
// gets a new value.
func enqueue(ctx context.Context, s *session.Session, key, value, waitPrefix string, mode enqueueMode) (e *entry, first bool, err error) {
	cli := s.Client()
	getFirst := clientv3.OpGet(waitPrefix, clientv3.WithFirstCreate()...)
	var txn clientv3.Txn
	switch mode {
	case modeCreate:
		txn = cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, value, clientv3.WithLease(s.Lease())), getFirst).
			Else(clientv3.OpGet(key), getFirst)
	case modeResume:
		txn = cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), ">", 0)).
			Then(clientv3.OpGet(key), getFirst)
	}
	resp, err := txn.Commit()
	if err != nil {
		// The put may have been applied with its answer lost: the key
		// would wait (and one day hold) for nobody.
		err = fmt.Errorf("enqueue %s: %w", key, err)
		if mode == modeCreate {
			return nil, false, errUnsure{err}
		}
		return nil, false, err
	}
	created := mode == modeCreate && resp.Succeeded
	if mode == modeResume && !resp.Succeeded {
		return nil, false, fmt.Errorf("resume %s: %w", key, ErrNoKey)
	}
	rev := resp.Header.Revision
	if !created {
		kv := resp.Responses[0].GetResponseRange().Kvs[0]
		if clientv3.LeaseID(kv.Lease) != s.Lease() {
			return nil, false, fmt.Errorf("take over %s: bound to lease %x, not this session's %x", key, kv.Lease, int64(s.Lease()))
		}
		rev = kv.CreateRevision
		if mode == modeCreate && string(kv.Value) != value {
			// Taken over with a new value (a restarted candidate campaigning
			// with a new one): fenced, so a key lost meanwhile is not
			// recreated with a new create revision.
			presp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, value, clientv3.WithLease(s.Lease()))).Commit()
			if err != nil {
				return nil, false, fmt.Errorf("update %s: %w", key, err)
			}
			if !presp.Succeeded {
				return nil, false, fmt.Errorf("update %s: %w: key gone", key, ErrLost)
			}
			resp.Header = presp.Header
		}
	}
	owner := resp.Responses[1].GetResponseRange().Kvs
	first = len(owner) == 0 || owner[0].CreateRevision >= rev
	e = &entry{s: s, hold: s.Hold(key, rev, resp.Header.Revision), waitPrefix: waitPrefix}
	if first {
		e.header = resp.Header
	}
	return e, first, nil
}

// waitTurn returns when no key under e.waitPrefix was created before e's,
// or with an error wrapping ErrLost as soon as e's key is deleted or its
// session ends, or with the context's error.
func (e *entry) waitTurn(ctx context.Context) error {
	// Requests stop the moment the hold ends, even one blocked on a member
	// that cannot be reached; the loss is then the error to report.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.hold.Context(), cancel)()
	if err := e.waitTurnLoop(wctx); err != nil {
		if e.hold.Err() != nil {
			return e.lost()
		}
		return err
	}
	return nil
}

func (e *entry) waitTurnLoop(ctx context.Context) error {
	cli := e.s.Client()
	before := append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(e.hold.CreateRevision()-1))
	backoff := minBackoff
	for {
		// Fenced on our own key, so a waiter whose key vanished learns it
		// here rather than after its predecessors are gone.
		resp, err := cli.Txn(ctx).If(e.hold.Cmp()).Then(clientv3.OpGet(e.waitPrefix, before...)).Commit()
		if err != nil {
			// A waiter waits through the cluster's trouble for as long as
			// its session lives: the session decides when it is lost.
			if e.hold.Err() != nil {
				return e.lost()
			}
			if !session.IsUnavailable(err) {
				return fmt.Errorf("find predecessor of %s: %w", e.key(), err)
			}
			if err := e.pause(ctx, &backoff); err != nil {
				return err
			}
			continue
		}
		backoff = minBackoff
		if !resp.Succeeded {
			return fmt.Errorf("%w: %s deleted while waiting", ErrLost, e.key())
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			e.header = resp.Header
			return nil
		}
		if err := e.waitDeleted(ctx, string(kvs[0].Key), resp.Header.Revision); err != nil {
			return err
		}
	}
}

const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second

// pause waits out a backoff (doubling it) before a retry, unless the hold
// or ctx ends first.
func (e *entry) pause(ctx context.Context, backoff *time.Duration) error {
	select {
	case <-e.hold.Done():
		return e.lost()
	case <-ctx.Done():
		return fmt.Errorf("wait for %s: %w", e.key(), context.Cause(ctx))
	case <-time.After(*backoff):
	}
	*backoff = min(2**backoff, maxBackoff)
	return nil
}

// waitDeleted waits for key, seen at revision rev, to be deleted. It also
// returns nil when the watch breaks, so that the caller looks again.
func (e *entry) waitDeleted(ctx context.Context, key string, rev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := e.s.Client().Watch(wctx, key, clientv3.WithRev(rev+1))
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("wait for %s: %w", key, context.Cause(ctx))
				}
				backoff := minBackoff // a watch that keeps breaking is not retried in a loop
				return e.pause(ctx, &backoff)
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return nil
				}
			}
		case <-e.hold.Done():
			return e.lost()
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", key, context.Cause(ctx))
		}
	}
}

// lost returns the error for an entry whose hold ended.
func (e *entry) lost() error {
	return fmt.Errorf("%w: %w", ErrLost, e.hold.Err())
}

// release deletes e's key if it is still e's (fenced on its create
// revision) and stops watching it; deleted reports whether it was there.
// On a request error nothing changes and the caller may retry.
// A retry after a failed attempt whose delete was applied anyway finds the
// key gone; that counts as deleted.
func (e *entry) release(ctx context.Context) (deleted bool, err error) {
	resp, err := e.s.Client().Txn(ctx).If(e.hold.Cmp()).Then(clientv3.OpDelete(e.key())).Commit()
	if err != nil {
		e.releaseFailed = true
		return false, fmt.Errorf("delete %s: %w", e.key(), err)
	}
	e.hold.Stop()
	return resp.Succeeded || e.releaseFailed, nil
}

// errUnsure wraps a failed request to create a key that may have been
// applied anyway.
type errUnsure struct{ error }

func (e errUnsure) Unwrap() error { return e.error }

// abandon releases an entry that gave up waiting: left behind, its key
// would wait, and one day hold, for nobody. It runs even when ctx has ended
// (that is often why it gave up), retrying until the key is gone, the
// session ends (the key then goes with the lease), or a TTL has passed. An
// entry whose hold already ended has nothing left to delete.
func (e *entry) abandon(ctx context.Context) error {
	if e.hold.Err() != nil {
		e.hold.Stop()
		return nil
	}
	return retryCleanup(ctx, e.s, func(ctx context.Context) error {
		_, err := e.release(ctx)
		return err
	})
}

// deleteKey deletes a key of ours whose fate is unknown (a request to
// create it failed) as abandon does. The key's name is unique to this
// participant, so no fence is needed.
func deleteKey(ctx context.Context, s *session.Session, key string) error {
	return retryCleanup(ctx, s, func(ctx context.Context) error {
		if _, err := s.Client().Delete(ctx, key); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		return nil
	})
}

// retryCleanup runs op, detached from ctx's end, until it succeeds, the
// session ends, or the session TTL has passed.
func retryCleanup(ctx context.Context, s *session.Session, op func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.TTL())
	defer cancel()
	backoff := minBackoff
	for {
		err := op(rctx)
		if err == nil || s.Err() != nil {
			return nil
		}
		select {
		case <-s.Done():
			return nil
		case <-rctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// gaveUp returns errors.Join(cause, cleanupErr) and records in stale a key
// that could not be deleted, for the next call to retry.
func gaveUp(cause, cleanupErr error, key string, stale *string) error {
	if cleanupErr == nil {
		return cause
	}
	*stale = key
	return errors.Join(cause, fmt.Errorf("give up %s (retried on the next call; or Close the session): %w", key, cleanupErr))
}
