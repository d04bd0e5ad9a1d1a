package recipes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/concordkv/concord/session"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors a caller may branch on; the package wraps them with the recipe's
// name and what it was doing.
var (
	// ErrNoPermit: TryAcquire found every permit of the semaphore taken
	// (or waited for).
	ErrNoPermit = errors.New("recipes: no permit free")
	// ErrLost: a participant's key (permit, barrier place, group
	// membership) was deleted or its session ended; the cause is wrapped
	// too.
	ErrLost = errors.New("recipes: key lost")
	// ErrNotHeld: Release, Leave or Update without a hold.
	ErrNotHeld = errors.New("recipes: not held")
	// ErrInUse: a participant value used by two calls at once, or acquired
	// twice; make one per goroutine.
	ErrInUse = errors.New("recipes: participant in use")
	// ErrBarrierHeld: Hold on a barrier that is already up.
	ErrBarrierHeld = errors.New("recipes: barrier already held")
	// ErrBarrierFull: Enter on a double barrier that already has its count
	// of participants, or whose round has started.
	ErrBarrierFull = errors.New("recipes: double barrier full")
	// ErrMemberExists: Join with an ID that is already a member.
	ErrMemberExists = errors.New("recipes: member already in the group")
	// ErrInvalid: an empty name, a limit or count below one, or a member ID
	// that is empty or contains "/".
	ErrInvalid = errors.New("recipes: invalid argument")
)

// participantKey names a participant's key under prefix: the session's
// lease in hex and a random part, so that participants sharing a session
// do not share a key.
func participantKey(prefix string, s *session.Session) string {
	return fmt.Sprintf("%s%x-%016x", prefix, int64(s.Lease()), rand.Uint64())
}

// itemKey names a queue item under prefix.
func itemKey(prefix string) string { return fmt.Sprintf("%s%016x", prefix, rand.Uint64()) }

// deleteOwn deletes a key of ours bound to s's lease whose creation
// request failed (it may have been applied) or that must go after a
// failure: left behind, it would wait, and one day hold, for nobody. It
// runs even when ctx has ended, retrying until the delete succeeds, the
// session ends (the key then goes with the lease), or a TTL has passed.
// The key's name is unique to us, so no fence is needed.
func deleteOwn(ctx context.Context, s *session.Session, key string) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.TTL())
	defer cancel()
	backoff := minBackoff
	for {
		_, err := s.Client().Delete(rctx, key)
		if err == nil || s.Err() != nil {
			return nil
		}
		select {
		case <-s.Done():
			return nil
		case <-rctx.Done():
			return fmt.Errorf("delete %s: %w", key, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// withdraw deletes the key of a participant that stops waiting, or whose
// request to create it failed (h nil: the key may or may not exist), with
// deleteOwn, unless its hold shows the key gone already; it returns cause,
// with why the key could not be deleted if so.
func withdraw(ctx context.Context, s *session.Session, key string, h *session.Hold, cause error) error {
	if h != nil {
		defer h.Stop()
		if h.Err() != nil {
			return cause
		}
	}
	if err := deleteOwn(ctx, s, key); err != nil {
		return fmt.Errorf("%w (and %v: the key may wait for nobody until the session ends)", cause, err)
	}
	return cause
}

const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second

// retryRead runs read until it succeeds or fails for a reason other than
// the cluster's unavailability (see session.IsUnavailable), pausing
// between tries; the end of hold (if any) or of ctx stops it.
func retryRead[T any](ctx context.Context, hold *session.Hold, read func() (T, error)) (T, error) {
	var holdDone <-chan struct{}
	if hold != nil {
		holdDone = hold.Done()
	}
	backoff := minBackoff
	for {
		v, err := read()
		if err == nil || !session.IsUnavailable(err) {
			return v, err
		}
		select {
		case <-holdDone:
			return v, lost(hold)
		case <-ctx.Done():
			return v, context.Cause(ctx)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// lost wraps a hold's end as ErrLost.
func lost(h *session.Hold) error { return fmt.Errorf("%w: %w", ErrLost, h.Err()) }

// waitEvent watches key (a prefix if prefix is set) from rev+1 and returns
// the first event match accepts. It returns a nil event when the watch
// breaks (the caller looks again), an error wrapping ErrLost when hold
// (if any) ends, and the context's error when ctx ends.
func waitEvent(ctx context.Context, cli *clientv3.Client, key string, prefix bool, rev int64, hold *session.Hold, match func(*clientv3.Event) bool) (*clientv3.Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithRev(rev + 1)}
	if prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	wch := cli.Watch(wctx, key, opts...)
	var holdDone <-chan struct{}
	if hold != nil {
		holdDone = hold.Done()
	}
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				// Broken: the caller looks again, after a pause so that a
				// watch that keeps breaking is not retried in a loop.
				select {
				case <-holdDone:
					return nil, lost(hold)
				case <-ctx.Done():
					return nil, context.Cause(ctx)
				case <-time.After(minBackoff):
				}
				return nil, nil
			}
			for _, ev := range wr.Events {
				if match(ev) {
					return ev, nil
				}
			}
		case <-holdDone:
			return nil, lost(hold)
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

func isDelete(ev *clientv3.Event) bool { return ev.Type == mvccpb.DELETE }
func isPut(ev *clientv3.Event) bool    { return ev.Type == mvccpb.PUT }
func anyEvent(*clientv3.Event) bool    { return true }
