package server

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/raftnode"
	"github.com/concordkv/concord/version"
)

// FillHeader sets the header fields every etcd response carries: cluster
// and member ID, raft term, and the store's current revision unless the
// response already has its own.
func (s *Server) FillHeader(h *pb.ResponseHeader) {
	h.ClusterId = s.members.ClusterID()
	h.MemberId = s.id
	h.RaftTerm = s.node.Term()
	if h.Revision == 0 {
		s.mu.RLock()
		h.Revision = s.kv.Rev()
		s.mu.RUnlock()
	}
}

// Status reports this member's view, as etcd's Maintenance.Status does.
func (s *Server) Status(context.Context) (*pb.StatusResponse, error) {
	st := s.node.Status()
	s.mu.RLock()
	size, err := s.be.Size()
	if err != nil {
		s.mu.RUnlock()
		return nil, fmt.Errorf("status: %w", err)
	}
	inUse, err := s.be.SizeInUse()
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	m, _ := s.members.Get(s.id)
	resp := &pb.StatusResponse{
		Header:           &pb.ResponseHeader{},
		Version:          version.EtcdVersion,
		DbSize:           size,
		DbSizeInUse:      inUse,
		Leader:           st.Leader,
		RaftIndex:        st.CommitIndex,
		RaftTerm:         st.Term,
		RaftAppliedIndex: st.AppliedIndex,
		IsLearner:        m.IsLearner,
		DbSizeQuota:      s.cfg.QuotaBackendBytes,
		StorageVersion:   version.EtcdClusterVersion,
		DowngradeInfo:    &pb.DowngradeInfo{},
	}
	if st.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	return resp, nil
}

// Hash is a CRC of the whole local database (it differs between members:
// it covers per-member data too; HashKV is the one to compare).
func (s *Server) Hash(context.Context) (uint32, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.be.Hash()
}

// HashKV hashes the key-value history up to rev (0: current), the hash
// that is equal on every member that applied the same log.
func (s *Server) HashKV(_ context.Context, rev int64) (*pb.HashKVResponse, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h, hashRev, compactRev, err := s.kv.HashKV(rev)
	if err != nil {
		return nil, err
	}
	return &pb.HashKVResponse{
		Header:          &pb.ResponseHeader{},
		Hash:            h,
		CompactRevision: compactRev,
		HashRevision:    hashRev,
	}, nil
}

// MoveLeader hands leadership to target; only the leader may do it.
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if !s.node.Status().IsLeader {
		return raftnode.ErrNotLeader
	}
	return s.node.TransferLeadership(ctx, target)
}
