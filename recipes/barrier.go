package recipes

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/concordkv/concord/session"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Barrier blocks waiters while one key exists: one party Holds it up,
// any number Wait, and Release lets all of them go at once (they all see
// the same deletion).
type Barrier struct {
	cli *clientv3.Client
	key string
}

// NewBarrier returns the barrier whose key is name itself.
func NewBarrier(cli *clientv3.Client, name string) *Barrier {
	return &Barrier{cli: cli, key: name}
}

// Hold raises the barrier; ErrBarrierHeld if it is already up. The key has
// no lease: a holder that dies leaves the barrier up until someone
// Releases it.
func (b *Barrier) Hold(ctx context.Context) error {
	if b.key == "" {
		return fmt.Errorf("barrier: %w: empty name", ErrInvalid)
	}
	resp, err := b.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(b.key), "=", 0)).
		Then(clientv3.OpPut(b.key, "")).Commit()
	if err != nil {
		return fmt.Errorf("barrier %s: hold: %w", b.key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("barrier %s: %w", b.key, ErrBarrierHeld)
	}
	return nil
}

// Release lowers the barrier, letting every waiter go.
func (b *Barrier) Release(ctx context.Context) error {
	if _, err := b.cli.Delete(ctx, b.key); err != nil {
		return fmt.Errorf("barrier %s: release: %w", b.key, err)
	}
	return nil
}

// Wait returns once the barrier is down (at once if it is not up).
func (b *Barrier) Wait(ctx context.Context) error {
	for {
		resp, err := retryRead(ctx, nil, func() (*clientv3.GetResponse, error) { return b.cli.Get(ctx, b.key) })
		if err != nil {
			return fmt.Errorf("barrier %s: wait: %w", b.key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		ev, err := waitEvent(ctx, b.cli, b.key, false, resp.Header.Revision, nil, isDelete)
		if err != nil {
			return fmt.Errorf("barrier %s: wait: %w", b.key, err)
		}
		if ev != nil {
			return nil
		}
	}
}

// DoubleBarrier is one participant of a barrier for count participants:
// Enter returns once count participants have entered, Leave once all of
// them have left. Participants are keys bound to their session leases, so
// one that dies drops out when its lease expires.
//
// Keys: NAME/waiters/<lease-hex>-<random-hex> per participant, and
// NAME/ready while a round is released (the same names as etcd's
// experimental recipe). While NAME/ready exists no one can Enter.
type DoubleBarrier struct {
	s       *session.Session
	name    string
	waiters string // NAME/waiters/
	ready   string // NAME/ready
	count   int

	mu       sync.Mutex    // guards the fields below; never held during a request
	busy     bool          // an Enter or Leave is in flight
	hold     *session.Hold // this participant's key, from Enter to Leave
	readyRev int64         // mod revision of the ready key of this round
}

// NewDoubleBarrier returns a participant of the double barrier name for
// count participants; all of them must use the same count.
func NewDoubleBarrier(s *session.Session, name string, count int) *DoubleBarrier {
	return &DoubleBarrier{s: s, name: name, waiters: name + "/waiters/", ready: name + "/ready", count: count}
}

func (b *DoubleBarrier) begin(entering bool) (*session.Hold, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.busy:
		return nil, 0, fmt.Errorf("double barrier %s: %w", b.name, ErrInUse)
	case entering && b.hold != nil:
		return nil, 0, fmt.Errorf("double barrier %s: %w: entered and not left", b.name, ErrInUse)
	case !entering && b.hold == nil:
		return nil, 0, fmt.Errorf("double barrier %s: %w: not entered", b.name, ErrNotHeld)
	}
	b.busy = true
	return b.hold, b.readyRev, nil
}

func (b *DoubleBarrier) end(h *session.Hold, readyRev int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.busy, b.hold, b.readyRev = false, h, readyRev
}

// Enter joins the barrier and waits until count participants have joined.
// It fails with ErrBarrierFull if count participants are already in (or
// the round was released and not everyone has left), with an error
// wrapping ErrLost when this participant's key or session is lost, and
// with the context's error; in every failure its key is deleted.
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	if b.name == "" || b.count < 1 {
		return fmt.Errorf("double barrier %q count %d: %w", b.name, b.count, ErrInvalid)
	}
	if _, _, err := b.begin(true); err != nil {
		return err
	}
	h, readyRev, err := b.enter(ctx)
	b.end(h, readyRev)
	if err != nil {
		return fmt.Errorf("double barrier %s: enter: %w", b.name, err)
	}
	return nil
}

func (b *DoubleBarrier) enter(ctx context.Context) (*session.Hold, int64, error) {
	cli := b.s.Client()
	key := participantKey(b.waiters, b.s)
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(b.ready), "=", 0)).
		Then(clientv3.OpPut(key, "", clientv3.WithLease(b.s.Lease())),
			clientv3.OpGet(b.waiters, clientv3.WithPrefix(), clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return nil, 0, withdraw(ctx, b.s, key, nil, fmt.Errorf("join: %w", err))
	}
	if !resp.Succeeded {
		return nil, 0, fmt.Errorf("%w: a released round is still in progress", ErrBarrierFull)
	}
	rev := resp.Header.Revision
	h := b.s.Hold(key, rev, rev)
	readyRev, err := b.waitRound(ctx, h, rev, resp.Responses[1].GetResponseRange().Kvs)
	if err != nil {
		if h.Err() != nil {
			err = lost(h)
		}
		return nil, 0, withdraw(ctx, b.s, key, h, err)
	}
	return h, readyRev, nil
}

// waitRound waits until count participants are in (as seen in waiters at
// rev, and in the events after it) and returns the ready key's revision.
// Its requests stop the moment h ends.
func (b *DoubleBarrier) waitRound(ctx context.Context, h *session.Hold, rev int64, waiters []*mvccpb.KeyValue) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.Context(), cancel)()
	cli := b.s.Client()
	in := make(map[string]bool)
	for _, kv := range waiters {
		in[string(kv.Key)] = true
	}
	if len(in) > b.count {
		return 0, fmt.Errorf("%w: %d participants in already", ErrBarrierFull, len(in)-1)
	}
	// Watch everyone come and go until count are in, or until someone
	// else saw them and put the ready key. A broken watch is resumed after
	// a fresh read of the whole barrier, ready key included.
	for len(in) < b.count {
		readyRev, err := b.follow(ctx, rev, in)
		if err != nil || readyRev > 0 {
			return readyRev, err
		}
		if len(in) >= b.count {
			break
		}
		resp, err := retryRead(ctx, h, func() (*clientv3.GetResponse, error) {
			return cli.Get(ctx, b.name+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		})
		if err != nil {
			return 0, fmt.Errorf("count participants: %w", err)
		}
		clear(in)
		for _, kv := range resp.Kvs {
			switch k := string(kv.Key); {
			case k == b.ready:
				return kv.ModRevision, nil
			case strings.HasPrefix(k, b.waiters):
				in[k] = true
			}
		}
		rev = resp.Header.Revision
	}
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(b.ready), "=", 0)).
		Then(clientv3.OpPut(b.ready, "")).Else(clientv3.OpGet(b.ready)).Commit()
	if err != nil {
		// The put may have been applied; the ready key says whether the
		// round was released, by us or anyone.
		g, gerr := retryRead(ctx, h, func() (*clientv3.GetResponse, error) { return cli.Get(ctx, b.ready) })
		if gerr == nil && len(g.Kvs) > 0 {
			return g.Kvs[0].ModRevision, nil
		}
		return 0, fmt.Errorf("release the round: %w", err)
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	return resp.Responses[0].GetResponseRange().Kvs[0].ModRevision, nil
}

// follow applies the barrier's events after rev to in (the participants'
// keys), every event of every response, since several keys can go at one
// revision (participants sharing a lease). It returns the ready key's
// revision once someone puts it, or 0 once count are in or the watch
// broke (the caller tells the two apart by counting in).
func (b *DoubleBarrier) follow(ctx context.Context, rev int64, in map[string]bool) (int64, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for wr := range b.s.Client().Watch(wctx, b.name+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if wr.Err() != nil {
			break
		}
		for _, ev := range wr.Events {
			switch k := string(ev.Kv.Key); {
			case k == b.ready && ev.Type == mvccpb.PUT:
				return ev.Kv.ModRevision, nil
			case strings.HasPrefix(k, b.waiters) && ev.Type == mvccpb.PUT:
				in[k] = true
			case strings.HasPrefix(k, b.waiters):
				delete(in, k)
			}
		}
		if len(in) >= b.count {
			return 0, nil
		}
	}
	// Broken: pause, so that a watch that keeps breaking is not retried in
	// a loop.
	select {
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	case <-time.After(minBackoff):
	}
	return 0, nil
}

// Leave deletes this participant's key and waits until every participant
// of the round has left (or dropped out with its session); the last to see
// the barrier empty lowers NAME/ready so the next round can enter.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	h, readyRev, err := b.begin(false)
	if err != nil {
		return err
	}
	err = b.leave(ctx, h, readyRev)
	if err != nil {
		b.end(h, readyRev) // still in: Leave may be retried
		return fmt.Errorf("double barrier %s: leave: %w", b.name, err)
	}
	b.end(nil, 0)
	return nil
}

func (b *DoubleBarrier) leave(ctx context.Context, h *session.Hold, readyRev int64) error {
	cli := b.s.Client()
	if _, err := cli.Txn(ctx).If(h.Cmp()).Then(clientv3.OpDelete(h.Key())).Commit(); err != nil {
		return fmt.Errorf("delete %s: %w", h.Key(), err)
	}
	h.Stop()
	for {
		resp, err := retryRead(ctx, nil, func() (*clientv3.GetResponse, error) {
			return cli.Get(ctx, b.waiters, clientv3.WithPrefix(), clientv3.WithCountOnly())
		})
		if err != nil {
			return fmt.Errorf("count participants: %w", err)
		}
		if resp.Count == 0 {
			break
		}
		if _, err := waitEvent(ctx, cli, b.waiters, true, resp.Header.Revision, nil, isDelete); err != nil {
			return err
		}
	}
	// Fenced on this round's ready key, so a later round's is left alone.
	_, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(b.ready), "=", readyRev)).
		Then(clientv3.OpDelete(b.ready)).Commit()
	if err != nil {
		return fmt.Errorf("lower %s: %w", b.ready, err)
	}
	return nil
}
