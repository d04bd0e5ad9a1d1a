package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/core/lease"
)

// Keepalives and time-to-live questions reaching a follower go to the
// leader over the peer port, on etcd's own Lease service: the peer server
// registers a leader-only implementation that answers from the primary
// lessor and never forwards again.

// peerLease is the leader-only Lease service on the peer port.
type peerLease struct {
	pb.UnimplementedLeaseServer
	s *Server
}

func registerPeerLease(g *grpc.Server, s *Server) {
	pb.RegisterLeaseServer(g, &peerLease{s: s})
}

// errPeerNotPrimary is what a member that is not (yet) the primary answers
// on the peer port; the follower asks again, perhaps another leader.
var errPeerNotPrimary = status.Error(codes.Unavailable, "lease: not the primary lessor")

// On the peer keepalive stream a TTL of 0 means "no such lease" (as for
// clients) and ttlRenewFailed that this renewal failed and may be retried.
const ttlRenewFailed = -1

// errRenewFailed is a forwarded renewal the leader could not complete.
var errRenewFailed = errors.New("lease: the leader could not renew the lease")

// peerStreamWorkers bounds the renewals one forwarded stream runs at once:
// a renewal that clears a checkpoint waits for a Raft commit, and must not
// hold up the others multiplexed on the stream.
const peerStreamWorkers = 256

// LeaseKeepAlive renews each lease the follower sends and answers with its
// TTL (0: no such lease). Answers may come out of order; the follower
// matches them by lease ID. A member that is not the primary ends the
// stream with errPeerNotPrimary.
func (p *peerLease) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	k := &peerKeepAlive{s: p.s, stream: stream, ctx: ctx, cancel: cancel, sem: make(chan struct{}, peerStreamWorkers)}
	// The receive loop blocks in Recv, which only returns once this
	// handler has returned or the follower closed the stream: it ends with
	// the stream. The renewal workers are waited for here.
	go k.receive()
	<-ctx.Done()
	k.mu.Lock()
	k.closing = true
	k.mu.Unlock()
	k.workers.Wait()
	if err := context.Cause(ctx); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// peerKeepAlive is one forwarded keepalive stream on the leader.
type peerKeepAlive struct {
	s      *Server
	stream pb.Lease_LeaseKeepAliveServer
	ctx    context.Context
	cancel context.CancelCauseFunc
	sem    chan struct{}
	sendMu sync.Mutex

	mu      sync.Mutex // guards closing against workers.Go
	closing bool
	workers sync.WaitGroup
}

func (k *peerKeepAlive) receive() {
	for {
		req, err := k.stream.Recv()
		if err != nil {
			k.cancel(err)
			return
		}
		select {
		case k.sem <- struct{}{}:
		case <-k.ctx.Done():
			return
		}
		k.mu.Lock()
		if k.closing {
			k.mu.Unlock()
			return
		}
		k.workers.Go(func() { k.renew(req.ID) })
		k.mu.Unlock()
	}
}

func (k *peerKeepAlive) renew(id int64) {
	defer func() { <-k.sem }()
	ttl, err := k.s.primaryRenew(k.ctx, id)
	switch {
	case errors.Is(err, lease.ErrNotPrimary):
		// Every renewal on this stream would fail: end it, the follower
		// finds the leader again.
		k.cancel(errPeerNotPrimary)
		return
	case errors.Is(err, lease.ErrLeaseNotFound):
		ttl = 0
	case err != nil:
		// This renewal failed (a checkpoint clear did not commit in time);
		// the others multiplexed on the stream may not.
		ttl = ttlRenewFailed
	}
	k.sendMu.Lock()
	defer k.sendMu.Unlock()
	if k.ctx.Err() != nil {
		return
	}
	if err := k.stream.Send(&pb.LeaseKeepAliveResponse{ID: id, TTL: ttl}); err != nil {
		k.cancel(err)
	}
}

// LeaseTimeToLive answers from the primary lessor.
func (p *peerLease) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.ElectionTimeout)
	defer cancel()
	for {
		resp, err := p.s.lessor.TimeToLive(r)
		switch {
		case err == nil:
			return resp, nil
		case errors.Is(err, lease.ErrLeaseNotFound):
			return nil, rpctypes.ErrGRPCLeaseNotFound
		}
		if !p.s.awaitPrimary(ctx) {
			return nil, errPeerNotPrimary
		}
	}
}

// primaryRenew renews on this member's lessor, waiting up to an election
// timeout for it to be promoted when this member has just become leader.
// (The renewal itself is bounded by the lessor: a clear it waits for fails
// after the request timeout.)
func (s *Server) primaryRenew(ctx context.Context, id int64) (int64, error) {
	wait, cancel := context.WithTimeout(ctx, s.cfg.ElectionTimeout)
	defer cancel()
	for {
		ttl, err := s.lessor.Renew(ctx, id)
		if !errors.Is(err, lease.ErrNotPrimary) {
			return ttl, err
		}
		if !s.awaitPrimary(wait) {
			return -1, err
		}
	}
}

// awaitPrimary pauses while this member leads but its lessor is not
// promoted yet; false when it does not lead or ctx ended.
func (s *Server) awaitPrimary(ctx context.Context) bool {
	if !s.node.Status().IsLeader {
		return false
	}
	t := time.NewTimer(min(5*time.Millisecond, s.cfg.HeartbeatInterval))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// forwardTimeToLive asks the leader's primary lessor.
func (s *Server) forwardTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	cc, _, err := s.node.LeaderConn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := pb.NewLeaseClient(cc).LeaseTimeToLive(ctx, r)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, lease.ErrLeaseNotFound
		}
		return nil, fmt.Errorf("time-to-live from leader: %w", err)
	}
	return resp, nil
}

// renewForwarder multiplexes a follower's renewals onto one keepalive
// stream to the leader's peer port, reopened when it fails or the leader
// changes.
type renewForwarder struct {
	s    *Server
	ctx  context.Context // ends when the server closes
	stop context.CancelFunc

	mu sync.Mutex // guards up
	up *upstream
	wg sync.WaitGroup // one receive loop per upstream
}

// upstream is one keepalive stream to a leader.
type upstream struct {
	leader uint64
	stream pb.Lease_LeaseKeepAliveClient
	cancel context.CancelFunc
	sendMu sync.Mutex

	mu      sync.Mutex // guards waiters and err
	waiters map[int64][]chan int64
	err     error         // set once the stream failed
	done    chan struct{} // closed with err
}

func newRenewForwarder(s *Server) *renewForwarder {
	ctx, cancel := context.WithCancel(context.Background())
	return &renewForwarder{s: s, ctx: ctx, stop: cancel}
}

// close ends the stream and waits for its receive loop.
func (f *renewForwarder) close() {
	f.stop()
	f.wg.Wait()
}

// renew sends one renewal to the leader and waits for its answer.
func (f *renewForwarder) renew(ctx context.Context, id int64) (int64, error) {
	up, err := f.upstream(ctx)
	if err != nil {
		return -1, err
	}
	ch := make(chan int64, 1)
	up.mu.Lock()
	if up.err != nil {
		up.mu.Unlock()
		return -1, up.err
	}
	up.waiters[id] = append(up.waiters[id], ch)
	up.mu.Unlock()
	up.sendMu.Lock()
	err = up.stream.Send(&pb.LeaseKeepAliveRequest{ID: id})
	up.sendMu.Unlock()
	if err != nil {
		up.fail(fmt.Errorf("send keepalive to leader: %w", err))
	}
	select {
	case ttl := <-ch:
		switch {
		case ttl == ttlRenewFailed:
			return -1, errRenewFailed
		case ttl <= 0:
			return -1, lease.ErrLeaseNotFound
		}
		return ttl, nil
	case <-up.done:
		return -1, up.err
	case <-ctx.Done():
		up.forget(id, ch)
		return -1, ctx.Err()
	}
}

// upstream returns a working stream to the current leader, opening one
// when there is none, it failed, or leadership moved.
func (f *renewForwarder) upstream(ctx context.Context) (*upstream, error) {
	cc, leader, err := f.s.node.LeaderConn(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if up := f.up; up != nil {
		select {
		case <-up.done:
		default:
			if up.leader == leader {
				return up, nil
			}
			up.fail(errors.New("leader changed"))
		}
	}
	if err := f.ctx.Err(); err != nil {
		return nil, ErrStopped
	}
	sctx, cancel := context.WithCancel(f.ctx)
	stream, err := pb.NewLeaseClient(cc).LeaseKeepAlive(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open keepalive stream to leader %x: %w", leader, err)
	}
	up := &upstream{leader: leader, stream: stream, cancel: cancel, waiters: make(map[int64][]chan int64), done: make(chan struct{})}
	f.up = up
	f.wg.Go(up.receive)
	return up, nil
}

// receive hands each answer to the oldest renewal of that lease waiting.
func (up *upstream) receive() {
	for {
		resp, err := up.stream.Recv()
		if err != nil {
			up.fail(fmt.Errorf("keepalive stream to leader %x: %w", up.leader, err))
			return
		}
		up.mu.Lock()
		if ws := up.waiters[resp.ID]; len(ws) > 0 {
			ws[0] <- resp.TTL
			if len(ws) == 1 {
				delete(up.waiters, resp.ID)
			} else {
				up.waiters[resp.ID] = ws[1:]
			}
		}
		up.mu.Unlock()
	}
}

// fail ends the stream; every renewal waiting on it returns err.
func (up *upstream) fail(err error) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.err != nil {
		return
	}
	up.err = err
	up.cancel()
	close(up.done)
}

// forget drops a renewal that stopped waiting.
func (up *upstream) forget(id int64, ch chan int64) {
	up.mu.Lock()
	defer up.mu.Unlock()
	ws := up.waiters[id]
	for i, w := range ws {
		if w == ch {
			up.waiters[id] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(up.waiters[id]) == 0 {
		delete(up.waiters, id)
	}
}
