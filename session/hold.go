package session

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Hold watches one key that this session created (a lock key, a candidacy,
// a semaphore permit, a group membership) and reports the moment it stops
// existing: deleted by anyone, removed with the lease, or the session
// ended. It is what the SDK's Done channels are made of.
type Hold struct {
	s   *Session
	key string
	rev int64 // create revision of key

	// ctx is cancelled, with the reason as cause, when the hold ends; it is
	// derived from the session's context, so a session's end ends it too.
	ctx    context.Context
	cancel context.CancelCauseFunc
	exited chan struct{} // closed when the watching goroutine returns
}

// Hold starts watching key, which this session created at createRev and
// which was seen to exist at revision seenRev (a response header's
// revision). Stop it when done.
func (s *Session) Hold(key string, createRev, seenRev int64) *Hold {
	ctx, cancel := context.WithCancelCause(s.ctx)
	h := &Hold{s: s, key: key, rev: createRev, ctx: ctx, cancel: cancel, exited: make(chan struct{})}
	go h.watch(seenRev)
	return h
}

// Key returns the held key.
func (h *Hold) Key() string { return h.key }

// CreateRevision returns the held key's create revision.
func (h *Hold) CreateRevision() int64 { return h.rev }

// Cmp returns a comparison that holds while the key exists with its
// create revision: put it into a Txn to fence a write on the hold.
func (h *Hold) Cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)
}

// Done returns a channel closed when the hold ends.
func (h *Hold) Done() <-chan struct{} { return h.ctx.Done() }

// Err returns nil while the key is held, and afterwards an error wrapping
// ErrKeyDeleted, ErrHoldStopped, or the session's end (see Session.Err).
func (h *Hold) Err() error {
	if h.ctx.Err() == nil {
		return nil
	}
	return context.Cause(h.ctx)
}

// Context returns a context cancelled, with Err as its cause, when the
// hold ends: derive from it the requests that only make sense while the
// key is held, so that they stop at once when it is lost.
func (h *Hold) Context() context.Context { return h.ctx }

// Stop stops watching (it does not delete the key) and waits for the
// watching goroutine to return.
func (h *Hold) Stop() {
	h.cancel(ErrHoldStopped)
	<-h.exited
}

// watch ends the hold on the first event that removes or replaces the key.
// A watch broken by compaction or a closed stream is resumed after a read
// confirms the key still exists, so no deletion goes unnoticed.
func (h *Hold) watch(seenRev int64) {
	defer close(h.exited)
	cli := h.s.client
	for {
		wctx, wcancel := context.WithCancel(h.ctx)
		for wr := range cli.Watch(wctx, h.key, clientv3.WithRev(seenRev+1)) {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE || ev.Kv.CreateRevision != h.rev {
					wcancel()
					h.cancel(fmt.Errorf("%w: %s at revision %d", ErrKeyDeleted, h.key, ev.Kv.ModRevision))
					return
				}
			}
		}
		wcancel()
		if h.ctx.Err() != nil {
			return
		}
		rev, err := h.confirm()
		if err != nil {
			h.cancel(err)
			return
		}
		seenRev = rev
	}
}

// confirm reads the key after a broken watch, retrying until it gets an
// answer or the hold ends, and returns the revision it was seen at.
func (h *Hold) confirm() (int64, error) {
	backoff := 50 * time.Millisecond
	for {
		resp, err := h.s.client.Get(h.ctx, h.key)
		if err == nil {
			if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != h.rev {
				return 0, fmt.Errorf("%w: %s gone by revision %d", ErrKeyDeleted, h.key, resp.Header.Revision)
			}
			return resp.Header.Revision, nil
		}
		select {
		case <-h.ctx.Done():
			return 0, context.Cause(h.ctx)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
