package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// maxPayloadBytes bounds one payload; the server's own request limit
// (etcd's 1.5 MiB) is far below it.
const maxPayloadBytes = 64 << 20

// proposal is one payload waiting to be packed, replicated and applied.
type proposal struct {
	ctx     context.Context
	payload []byte
	done    chan proposeResult // buffered 1; written once
}

type proposeResult struct {
	data []byte
	err  error
}

func (p *proposal) answer(data []byte, err error) {
	p.done <- proposeResult{data: data, err: err}
}

// Propose replicates payload and returns the state machine's result for
// it. Concurrent proposals on a member are packed into one batch: on the
// leader the batch is one raft entry, answered once applied there; a
// follower forwards the batch to the leader over the peer port, where it
// becomes one entry, and returns the leader's results. It waits up
// to about an election timeout for a leader (then ErrNoLeader). After an
// error wrapping ErrLeaderChanged, ErrTimeout or ErrStopped the outcome is
// unknown: the payload may still be applied.
func (n *Node) Propose(ctx context.Context, payload []byte) ([]byte, error) {
	if len(payload) > maxPayloadBytes {
		return nil, fmt.Errorf("propose %d bytes: %w", len(payload), ErrTooLarge)
	}
	p := &proposal{ctx: ctx, payload: payload, done: make(chan proposeResult, 1)}
	if err := n.enqueue(p); err != nil {
		return nil, err
	}
	return n.await(p)
}

// proposeForwarded appends a batch a follower forwarded as one entry and
// returns the result of each payload and the entry's index. It runs on the
// gRPC handler's goroutine
// and never waits for this node's proposers: those may themselves be
// forwarding to a member that, with an outdated view of the leader,
// forwards back here, and waiting for them would close a cycle.
func (n *Node) proposeForwarded(ctx context.Context, payloads [][]byte) ([][]byte, uint64, error) {
	if err := n.checkRunning(); err != nil {
		return nil, 0, err
	}
	if n.raft.State() != raft.Leader {
		return nil, 0, ErrNotLeader
	}
	return n.appendAndApply(ctx, payloads)
}

func (n *Node) enqueue(p *proposal) error {
	select {
	case <-n.stopping:
		return ErrStopped
	default:
	}
	select {
	case n.proposals <- p:
		return nil
	case <-p.ctx.Done():
		return ctxError(p.ctx)
	case <-n.stopping:
		return ErrStopped
	}
}

func (n *Node) await(p *proposal) ([]byte, error) {
	select {
	case r := <-p.done:
		return r.data, r.err
	case <-p.ctx.Done():
		return nil, ctxError(p.ctx)
	case <-n.stopping:
		select {
		case r := <-p.done:
			return r.data, r.err
		default:
			return nil, ErrStopped
		}
	}
}

// proposeLoop is one proposer: it takes the next proposal, packs whatever
// else is queued (up to MaxProposalBatch payloads and MaxBatchBytes), and
// replicates the batch. With proposersPerNode loops one batch is in flight
// while the next fills.
func (n *Node) proposeLoop() {
	for {
		var first *proposal
		select {
		case first = <-n.proposals:
		case <-n.stopping:
			n.failQueued()
			return
		}
		batch := n.fillBatch(first)
		if len(batch) > 0 {
			n.submit(batch)
		}
	}
}

// failQueued answers every queued proposal with ErrStopped.
func (n *Node) failQueued() {
	for {
		select {
		case p := <-n.proposals:
			p.answer(nil, ErrStopped)
		default:
			return
		}
	}
}

// fillBatch adds queued proposals to first without waiting.
func (n *Node) fillBatch(first *proposal) []*proposal {
	batch := make([]*proposal, 0, 16)
	size := 0
	add := func(p *proposal) {
		if p.ctx.Err() != nil {
			p.answer(nil, ctxError(p.ctx)) // its caller has gone
			return
		}
		batch = append(batch, p)
		size += len(p.payload)
	}
	add(first)
	for len(batch) < n.cfg.MaxProposalBatch && size < n.cfg.MaxBatchBytes {
		select {
		case p := <-n.proposals:
			add(p)
		default:
			return batch
		}
	}
	return batch
}

// submit replicates batch on the leader or forwards it, retrying while no
// leader is known (up to an election timeout) and while a leader answers
// that it no longer leads (nothing was appended then). Every proposal in
// batch is answered.
func (n *Node) submit(batch []*proposal) {
	deadline := time.Now().Add(n.cfg.ElectionTimeout)
	for {
		batch = dropGone(batch)
		if len(batch) == 0 {
			return
		}
		if err := n.checkRunning(); err != nil {
			answerAll(batch, err)
			return
		}
		if n.raft.State() == raft.Leader {
			if !n.applyLocal(batch) {
				return
			}
		} else {
			if addr, id := n.raft.LeaderWithID(); id != "" && addr != "" {
				if !n.forward(batch, string(addr), deadline) {
					return
				}
			}
		}
		if err := n.pause(context.Background(), deadline); err != nil {
			answerAll(batch, err)
			return
		}
	}
}

// applyLocal appends batch as one entry and answers it; it returns true
// (and answers nothing) when the entry was certainly not appended because
// this node is not, or no longer, the leader.
func (n *Node) applyLocal(batch []*proposal) (retry bool) {
	payloads := make([][]byte, len(batch))
	for i, p := range batch {
		payloads[i] = p.payload
	}
	// Not the callers' contexts: an appended entry cannot be withdrawn, and
	// each caller stops waiting on its own.
	results, _, err := n.appendAndApply(context.Background(), payloads)
	if errors.Is(err, ErrNotLeader) {
		return true
	}
	if err != nil {
		answerAll(batch, err)
		return false
	}
	for i, p := range batch {
		p.answer(results[i], nil)
	}
	return false
}

// applyError maps the error of a raft Apply future (or of waiting for it)
// to the package's sentinels. raft's own errors map as mapLeaderErr maps
// them, and the caller's cancellation or deadline stays what it is. Any
// other error is raft's log store failing (a full disk): the leader has
// stepped down, and the entry may have reached its disk, so the next
// leader may still commit it: ErrLeaderChanged.
func applyError(err error) error {
	if mapped := mapLeaderErr(err); mapped != err {
		return mapped
	}
	if codeOf(err) != "" || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrLeaderChanged, err)
}

// appendAndApply appends payloads as one entry on this leader and returns
// the state machine's results once applied here. ErrNotLeader means the
// entry was certainly not appended.
func (n *Node) appendAndApply(ctx context.Context, payloads [][]byte) ([][]byte, uint64, error) {
	n.appending.Add(1)
	fut := n.raft.Apply(packPayloads(payloads), n.cfg.ElectionTimeout)
	err := n.waitFuture(ctx, fut)
	if n.appending.Add(-1) == 0 {
		n.nudgeCommit()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("apply: %w", applyError(err))
	}
	results, ok := fut.Response().([][]byte)
	if !ok || len(results) != len(payloads) {
		return nil, 0, fmt.Errorf("apply entry %d: the state machine returned no results for it", fut.Index())
	}
	return results, fut.Index(), nil
}

// nudgeCommit asks for a heartbeat round once the last entry in flight is
// applied: heartbeats carry the commit index (see commitStamp), so followers
// apply the entry now instead of at the next AppendEntries. While entries
// keep coming, their AppendEntries carry the commit index and no nudge is
// sent.
func (n *Node) nudgeCommit() {
	select {
	case n.nudges <- struct{}{}:
	default:
	}
}

// nudgeLoop runs the heartbeat rounds nudgeCommit asks for, one at a time.
func (n *Node) nudgeLoop() {
	for {
		select {
		case <-n.nudges:
		case <-n.stopping:
			return
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		// VerifyLeader sends every follower a heartbeat at once; its outcome
		// does not matter here.
		_ = n.waitFuture(n.life, n.raft.VerifyLeader())
	}
}

// forward sends batch to the leader at addr and answers it; it returns true
// (and answers nothing) when nothing can have been appended: the leader
// could not be reached, or answered that it does not lead.
func (n *Node) forward(batch []*proposal, addr string, deadline time.Time) (retry bool) {
	cc, err := n.conns.get(addr)
	if err != nil {
		answerAll(batch, err)
		return false
	}
	ctx, cancel := n.batchContext(batch)
	defer cancel()
	// Send only over an established connection: a failure before the
	// request leaves this node is then a plain retry, and a failure after
	// it has an unknown outcome.
	// Wait at most a fifth of an election timeout, then look up the
	// leader again.
	if !n.waitReady(ctx, cc, n.leaderRecheck(deadline)) {
		return true
	}
	payloads := make([][]byte, len(batch))
	for i, p := range batch {
		payloads[i] = p.payload
	}
	results, index, err := peerClient{cc}.propose(ctx, payloads)
	if err != nil {
		switch {
		case errors.Is(err, ErrNotLeader):
			return true
		case ctx.Err() != nil:
			// Every caller has gone (each was answered by its own
			// context) or the node is stopping.
			answerAll(batch, ErrStopped)
		case status.Code(err) == codes.Unavailable:
			answerAll(batch, fmt.Errorf("forward to leader %s: %w (%w)", addr, ErrLeaderChanged, err))
		default:
			answerAll(batch, fmt.Errorf("forward to leader %s: %w", addr, err))
		}
		return false
	}
	// Answer once this member has applied the entry too, as etcd does: a
	// client that wrote through this member then reads its own write here,
	// serializable reads and watches included. Bounded: the write is done
	// whatever happens here.
	wctx, wcancel := context.WithTimeout(ctx, n.cfg.ElectionTimeout)
	_ = n.WaitApplied(wctx, index)
	wcancel()
	for i, p := range batch {
		p.answer(results[i], nil)
	}
	return false
}

// batchContext is cancelled when every proposal's caller has gone or the
// node stops.
func (n *Node) batchContext(batch []*proposal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(n.life)
	var remaining atomic.Int64
	remaining.Store(int64(len(batch)))
	stops := make([]func() bool, 0, len(batch))
	for _, p := range batch {
		stops = append(stops, context.AfterFunc(p.ctx, func() {
			if remaining.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, s := range stops {
			s()
		}
		cancel()
	}
}

// attemptTimeoutFactor × ElectionTimeout bounds one peer RPC whose answer
// raft itself bounds (a deposed leader answers within its lease timeout);
// the limit only catches connections that went silent.
const attemptTimeoutFactor = 4

// readyConn returns the cached connection to addr once it is connected
// (see waitReady). A connection that does not come up is ErrNoLeader:
// nothing was sent, so the caller may look for the leader again.
func (n *Node) readyConn(ctx context.Context, addr string, deadline time.Time) (*grpc.ClientConn, error) {
	cc, err := n.conns.get(addr)
	if err != nil {
		return nil, err
	}
	if !n.waitReady(ctx, cc, deadline) {
		if ctx.Err() != nil {
			return nil, ctxError(ctx)
		}
		return nil, fmt.Errorf("%w: no connection to %s", ErrNoLeader, addr)
	}
	return cc, nil
}

// waitReady waits until cc is connected or deadline passes. A connection
// waiting out a reconnect backoff is retried at once, but only once per
// call, so that a request right after a partition heals does not wait for
// the backoff while a partitioned node does not dial in a loop.
func (n *Node) waitReady(ctx context.Context, cc *grpc.ClientConn, deadline time.Time) bool {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	reset := false
	for {
		s := cc.GetState()
		switch s {
		case connectivity.Ready:
			return true
		case connectivity.Idle:
			cc.Connect()
		case connectivity.TransientFailure:
			if !reset {
				reset = true
				cc.ResetConnectBackoff()
			}
		case connectivity.Shutdown:
			return false
		}
		if !cc.WaitForStateChange(ctx, s) {
			return false
		}
	}
}

// leaderRecheck bounds a wait for a connection to the leader, after which
// the caller looks the leader up again.
func (n *Node) leaderRecheck(deadline time.Time) time.Time {
	return earliest(deadline, time.Now().Add(n.cfg.ElectionTimeout/5))
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// dropGone answers and removes proposals whose callers have gone.
func dropGone(batch []*proposal) []*proposal {
	kept := batch[:0]
	for _, p := range batch {
		if p.ctx.Err() != nil {
			p.answer(nil, ctxError(p.ctx))
			continue
		}
		kept = append(kept, p)
	}
	return kept
}

func answerAll(batch []*proposal, err error) {
	for _, p := range batch {
		p.answer(nil, err)
	}
}
