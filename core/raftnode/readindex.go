package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// readRequest asks the leader's readLoop for a read index.
type readRequest struct {
	done chan readResult // buffered 1; written once
}

type readResult struct {
	index uint64
	err   error
}

// ReadBarrier is a linearizable read barrier: when it returns nil, this
// node's state machine has applied every write acknowledged (by any member)
// before ReadBarrier was called, so a local read that follows observes
// them. The leader confirms its leadership with one heartbeat round shared
// by all reads waiting at that moment; a follower asks the leader for that
// index over the peer port and waits for its own state machine to reach
// it. It never relies on the leader lease. It waits up to about an
// election timeout for a leader (then ErrNoLeader).
func (n *Node) ReadBarrier(ctx context.Context) error {
	deadline := time.Now().Add(n.cfg.ElectionTimeout)
	for {
		if err := n.checkRunning(); err != nil {
			return err
		}
		var (
			index uint64
			err   error
			asked bool
		)
		if n.raft.State() == raft.Leader {
			index, err = n.leaderReadIndex(ctx)
			asked = true
		} else if _, id := n.raft.LeaderWithID(); id != "" {
			index, err = n.askRemoteReadIndex(ctx)
			asked = true
		}
		if asked && err == nil {
			return n.WaitApplied(ctx, index)
		}
		if asked && !retryableRead(err) {
			return err
		}
		if perr := n.pause(ctx, deadline); perr != nil {
			if errors.Is(perr, ErrNoLeader) && err != nil {
				return fmt.Errorf("%w (last attempt: %w)", ErrNoLeader, err)
			}
			return perr
		}
	}
}

// retryableRead reports whether asking again (perhaps another leader) may
// succeed. Reads have no effects, so any transport failure qualifies.
func retryableRead(err error) bool {
	switch {
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrLeaderChanged), errors.Is(err, ErrNoLeader):
		return true
	case errors.Is(err, ErrStopped), errors.Is(err, ErrRemoved), errors.Is(err, context.Canceled):
		return false
	}
	_, isStatus := status.FromError(err)
	return isStatus && status.Code(err) != codes.Canceled
}

// askRemoteReadIndex has a remoteReadLoop ask the leader for a read index,
// together with every other read waiting on this follower at that moment.
func (n *Node) askRemoteReadIndex(ctx context.Context) (uint64, error) {
	return n.askReadIndex(ctx, n.remoteReads)
}

// remoteReadLoop asks the leader for one read index per batch of reads
// waiting on this follower: a batch shares one peer RPC. The RPC starts
// after every read in the batch arrived, so the index it returns covers
// each of them. Two loops run, so one batch waits while the other's RPC is
// in flight.
func (n *Node) remoteReadLoop() {
	for {
		batch, ok := n.nextReadBatch(n.remoteReads)
		if !ok {
			return
		}
		var res readResult
		if addr, id := n.raft.LeaderWithID(); id == "" || addr == "" {
			res.err = ErrNoLeader
		} else {
			res.index, res.err = n.remoteReadIndex(n.life, string(addr))
		}
		for _, r := range batch {
			r.done <- res
		}
	}
}

// nextReadBatch waits for a read request on ch and gathers every request
// queued behind it; ok is false once the node stops (queued requests are
// failed with ErrStopped).
func (n *Node) nextReadBatch(ch chan *readRequest) (batch []*readRequest, ok bool) {
	select {
	case r := <-ch:
		batch = append(batch, r)
	case <-n.stopping:
		failReads(ch)
		return nil, false
	}
	for {
		select {
		case r := <-ch:
			batch = append(batch, r)
		default:
			return batch, true
		}
	}
}

// remoteReadIndex asks the leader at addr for a read index. A leader cut
// off from its quorum steps down within half an election timeout and
// answers an error, so the attempt's own limit (a few election timeouts)
// only guards against a connection that went silent.
func (n *Node) remoteReadIndex(ctx context.Context, addr string) (uint64, error) {
	cc, err := n.readyConn(ctx, addr, n.leaderRecheck(time.Now().Add(n.cfg.ElectionTimeout)))
	if err != nil {
		return 0, fmt.Errorf("read index from leader %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeoutFactor*n.cfg.ElectionTimeout)
	defer cancel()
	index, err := peerClient{cc}.readIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("read index from leader %s: %w", addr, err)
	}
	return index, nil
}

// leaderReadIndex returns an index that covers every write acknowledged
// before the call, after confirming that this node still leads. It fails
// with ErrNotLeader on a follower.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	return n.askReadIndex(ctx, n.reads)
}

// askReadIndex queues a read request on ch and waits for its answer.
func (n *Node) askReadIndex(ctx context.Context, ch chan *readRequest) (uint64, error) {
	r := &readRequest{done: make(chan readResult, 1)}
	select {
	case ch <- r:
	case <-ctx.Done():
		return 0, ctxError(ctx)
	case <-n.stopping:
		return 0, ErrStopped
	}
	select {
	case res := <-r.done:
		return res.index, res.err
	case <-ctx.Done():
		return 0, ctxError(ctx)
	case <-n.stopping:
		return 0, ErrStopped
	}
}

// readLoop confirms leadership for batches of read requests: every request
// waiting when a round starts shares that round's heartbeat.
func (n *Node) readLoop() {
	var barrierTerm uint64 // the term whose post-election barrier completed
	for {
		batch, ok := n.nextReadBatch(n.reads)
		if !ok {
			return
		}
		n.readRounds.Add(1)
		index, err := n.confirmReadIndex(&barrierTerm)
		for _, r := range batch {
			r.done <- readResult{index: index, err: err}
		}
	}
}

func failReads(ch chan *readRequest) {
	for {
		select {
		case r := <-ch:
			r.done <- readResult{err: ErrStopped}
		default:
			return
		}
	}
}

// confirmReadIndex computes one read index for the requests waiting now.
//
// The index returned is this leader's applied index taken before the
// heartbeat round, not its commit index. Both are safe; the applied index
// is usable because raft's no-op and barrier entries never reach the state
// machine, so a follower could never observe reaching a commit index that
// points at one of them. It covers every acknowledged write: writes this
// leader acknowledged were applied here first, and writes of earlier terms
// were applied by the barrier this leader ran after its election, before
// serving any read. The heartbeat round (VerifyLeader) that starts after
// the index was taken proves no newer leader had been elected by then, and
// the term check proves leadership did not lapse in between.
func (n *Node) confirmReadIndex(barrierTerm *uint64) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	term := n.raft.CurrentTerm()
	if *barrierTerm != term {
		if err := n.waitFuture(n.life, n.raft.Barrier(n.cfg.ElectionTimeout)); err != nil {
			return 0, fmt.Errorf("barrier after election: %w", mapLeaderErr(err))
		}
		if n.raft.CurrentTerm() != term {
			return 0, fmt.Errorf("barrier after election: %w", ErrLeaderChanged)
		}
		*barrierTerm = term
	}
	index := n.applied.Index()
	if err := n.waitFuture(n.life, n.raft.VerifyLeader()); err != nil {
		return 0, fmt.Errorf("confirm leadership: %w", mapLeaderErr(err))
	}
	if n.raft.CurrentTerm() != term || n.raft.State() != raft.Leader {
		return 0, fmt.Errorf("confirm leadership: %w", ErrLeaderChanged)
	}
	return index, nil
}

// mapLeaderErr maps raft's leadership errors to this package's sentinels.
func mapLeaderErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrLeaderChanged, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrStopped, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
