package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/lease"
	"github.com/concordkv/concord/core/raftnode"
)

// leaseRaft is the replication the lessor needs, over this member's node.
// The node is set once raft has started; until then the lessor cannot be
// promoted (Barrier fails) and IsLeader is false.
type leaseRaft struct {
	s    *Server
	node atomic.Pointer[raftnode.Node]
}

var _ lease.Raft = (*leaseRaft)(nil)

func (r *leaseRaft) Propose(ctx context.Context, req *pb.InternalRaftRequest) error {
	return r.s.propose(ctx, req, nil)
}

func (r *leaseRaft) Barrier(ctx context.Context) error {
	n := r.node.Load()
	if n == nil {
		return raftnode.ErrNoLeader
	}
	return n.ReadBarrier(ctx)
}

func (r *leaseRaft) IsLeader() bool {
	n := r.node.Load()
	return n != nil && n.Status().IsLeader
}

// newLessor builds the member's lease table from the configuration: etcd's
// minimum TTL for these Raft timings, and promotions that extend every
// lease by an election timeout.
func (s *Server) newLessor() error {
	lcfg := lease.DefaultConfig()
	lcfg.MinTTL = lease.MinTTLFor(s.cfg.ElectionTimeout, s.cfg.HeartbeatInterval)
	lcfg.PromoteExtension = s.cfg.ElectionTimeout
	if s.cfg.LeaseRevokeRate > 0 {
		lcfg.RevokeRate = s.cfg.LeaseRevokeRate
	}
	// Checkpoints may lag five election timeouts (5 s by default): a
	// leader change costs about that much anyway (see core/lease).
	lcfg.CheckpointInterval = 5 * s.cfg.ElectionTimeout
	if s.cfg.LeaseCheckpointInterval > 0 {
		lcfg.CheckpointInterval = s.cfg.LeaseCheckpointInterval
	}
	lcfg.RetryInterval = max(s.cfg.ElectionTimeout, 100*time.Millisecond)
	lcfg.RequestTimeout = s.requestTimeout()
	s.leaseRaft = &leaseRaft{s: s}
	lcfg.Raft = s.leaseRaft
	lcfg.Logger = s.log.With("component", "lessor")
	l, err := lease.New(lcfg)
	if err != nil {
		return err
	}
	s.lessor, s.leaseFwd = l, newRenewForwarder(s)
	return nil
}

// LeaseGrant grants a lease through Raft. The ID (when the client gives
// none) and the TTL floor are settled before proposing; a picked ID that
// collides with a lease granted meanwhile is picked again.
func (s *Server) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	for attempt := 0; ; attempt++ {
		req := s.lessor.PrepareGrant(r, s.id)
		resp := &pb.LeaseGrantResponse{}
		err := s.propose(ctx, &pb.InternalRaftRequest{LeaseGrant: req}, resp)
		if errors.Is(err, lease.ErrLeaseExists) && r.ID == 0 && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// LeaseRevoke revokes a lease through Raft: its keys are deleted in one
// revision, which the response header carries.
func (s *Server) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp := &pb.LeaseRevokeResponse{}
	if err := s.propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: r}, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// LeaseRenew renews a lease on the leader and returns its TTL in seconds:
// here when this member leads, otherwise forwarded over the peer port.
// Nothing is written to the Raft log, except a clear of the lease's
// checkpoint on the first renewal after one. lease.ErrLeaseNotFound means
// the lease does not exist (anymore).
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, error) {
	ctx, cancel := s.withRequestTimeout(ctx)
	defer cancel()
	for {
		var (
			ttl int64
			err error
		)
		if s.node.Status().IsLeader {
			ttl, err = s.lessor.Renew(ctx, id)
		} else {
			ttl, err = s.leaseFwd.renew(ctx, id)
		}
		if err == nil || !retryableLeaseErr(err) {
			return ttl, s.timeoutError(ctx, err)
		}
		if perr := s.leasePause(ctx); perr != nil {
			return -1, perr
		}
	}
}

// LeaseTimeToLive answers from the leader's view (remaining TTL from its
// deadline); followers ask the leader over the peer port.
func (s *Server) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	ctx, cancel := s.withRequestTimeout(ctx)
	defer cancel()
	for {
		var (
			resp *pb.LeaseTimeToLiveResponse
			err  error
		)
		if s.node.Status().IsLeader {
			resp, err = s.lessor.TimeToLive(r)
		} else {
			resp, err = s.forwardTimeToLive(ctx, r)
		}
		if err == nil || !retryableLeaseErr(err) {
			return resp, s.timeoutError(ctx, err)
		}
		if perr := s.leasePause(ctx); perr != nil {
			return nil, perr
		}
	}
}

// LeaseLeases lists every lease after the read barrier, so a lease granted
// before the call is listed by any member.
func (s *Server) LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error) {
	if err := s.readBarrier(ctx); err != nil {
		return nil, err
	}
	ids := s.lessor.Leases()
	resp := &pb.LeaseLeasesResponse{Header: &pb.ResponseHeader{}, Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		resp.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	return resp, nil
}

// retryableLeaseErr: the leader (or its lessor) is not there yet, or the
// link to it failed; asking again, perhaps another leader, may work.
func retryableLeaseErr(err error) bool {
	switch {
	case errors.Is(err, lease.ErrLeaseNotFound), errors.Is(err, context.Canceled),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, raftnode.ErrStopped),
		errors.Is(err, ErrStopped), errors.Is(err, lease.ErrClosed):
		return false
	}
	return true
}

// leasePause waits a little before a lease request asks again; it fails
// with the reason to stop once the request's time is up.
func (s *Server) leasePause(ctx context.Context) error {
	t := time.NewTimer(min(10*time.Millisecond, s.cfg.HeartbeatInterval))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), raftnode.ErrTimeout) {
			return fmt.Errorf("lease request: %w", raftnode.ErrTimeout)
		}
		return ctx.Err()
	}
}
