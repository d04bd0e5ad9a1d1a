package etcdapi

import (
	"context"
	"errors"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/concordkv/concord/core/lease"
)

// Lease is the lease table behind the Lease service.
type Lease interface {
	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	// LeaseRenew renews lease id on the leader and returns its TTL in
	// seconds; lease.ErrLeaseNotFound when there is no such lease.
	LeaseRenew(ctx context.Context, id int64) (int64, error)
	// LeaseTimeToLive fails with lease.ErrLeaseNotFound for an unknown
	// lease.
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error)
}

type leaseServer struct {
	pb.UnimplementedLeaseServer
	api *API
}

var _ pb.LeaseServer = (*leaseServer)(nil)

func (s *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	resp, err := s.api.cfg.Lease.LeaseGrant(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	resp, err := s.api.cfg.Lease.LeaseRevoke(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

// LeaseTimeToLive answers TTL -1 without error for an unknown lease, as
// etcd does.
func (s *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	resp, err := s.api.cfg.Lease.LeaseTimeToLive(ctx, r)
	if errors.Is(err, lease.ErrLeaseNotFound) {
		resp, err = &pb.LeaseTimeToLiveResponse{ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *leaseServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	resp, err := s.api.cfg.Lease.LeaseLeases(ctx)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

// LeaseKeepAlive renews each lease the client sends, in order, and answers
// with its TTL; an unknown lease answers TTL 0 (clientv3 then reports the
// lease gone). The stream ends on the first other error, as etcd's does, or
// when the API stops. Like etcd, a stream opened with require-leader
// (clientv3 opens its keepalive stream so) is refused while this member
// knows no leader, and ended with "etcdserver: no leader" once it has known
// none for NoLeaderStreamTimeout; clientv3 then closes the keepalive
// channels its callers opened with WithRequireLeader.
//
// The receive loop blocks in stream.Recv, which returns only once the
// client sends, goes away, or this handler has returned; so the handler
// signals it (ctx) rather than waiting for it, as etcd does.
func (s *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	a := s.api
	// The leader is a member-level fact; the Watch backend reports it.
	requireLeader := requiresLeader(stream.Context())
	if requireLeader && !a.cfg.Watch.HasLeader() {
		return rpctypes.ErrGRPCNoLeader
	}
	select {
	case <-a.stopping:
		return rpctypes.ErrGRPCStopped
	default:
	}
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	go func() { cancel(s.keepAliveLoop(ctx, stream)) }()
	leader := a.leaderMonitor(requireLeader)
	defer leader.stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-a.stopping:
			cancel(rpctypes.ErrGRPCStopped)
		case now := <-leader.C:
			if leader.lost(now) {
				cancel(rpctypes.ErrGRPCNoLeader)
			}
		}
	}
	if err := context.Cause(ctx); !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (s *leaseServer) keepAliveLoop(ctx context.Context, stream pb.Lease_LeaseKeepAliveServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		// The header is taken before the renewal, so its revision is not
		// newer than the renewal (etcd's order: a lease revoked at rev 3
		// is never seen renewed at rev 4).
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID, Header: s.api.header()}
		ttl, err := s.api.cfg.Lease.LeaseRenew(ctx, req.ID)
		switch {
		case errors.Is(err, lease.ErrLeaseNotFound):
			ttl = 0
		case err != nil:
			return s.api.toGRPCError(err)
		}
		resp.TTL = ttl
		if ctx.Err() != nil {
			return context.Cause(ctx) // the handler has returned or is returning
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
