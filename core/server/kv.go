package server

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/mvcc"
	"github.com/concordkv/concord/core/raftnode"
)

// Range reads from the local store: at once when serializable, after the
// Raft read barrier otherwise (linearizable, etcd's default).
func (s *Server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if !r.Serializable {
		if err := s.readBarrier(ctx); err != nil {
			return nil, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.Range(r)
}

// readBarrier waits until this member has applied everything committed
// before the call, bounded by the request timeout.
func (s *Server) readBarrier(ctx context.Context) error {
	ctx, cancel := s.withRequestTimeout(ctx)
	defer cancel()
	return s.timeoutError(ctx, s.node.ReadBarrier(ctx))
}

// Put writes through Raft.
func (s *Server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{}
	return resp, s.propose(ctx, &pb.InternalRaftRequest{Put: r}, resp)
}

// DeleteRange deletes through Raft.
func (s *Server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp := &pb.DeleteRangeResponse{}
	return resp, s.propose(ctx, &pb.InternalRaftRequest{DeleteRange: r}, resp)
}

// Txn runs a transaction through Raft, unless every op only reads: then it
// is answered from the local store like a range (after the read barrier
// unless all its ranges are serializable), as etcd does.
func (s *Server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if mvcc.IsReadOnlyTxn(r) {
		if !isSerializableTxn(r) {
			if err := s.readBarrier(ctx); err != nil {
				return nil, err
			}
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.kv.ReadTxn(r)
	}
	resp := &pb.TxnResponse{}
	return resp, s.propose(ctx, &pb.InternalRaftRequest{Txn: r}, resp)
}

// isSerializableTxn reports whether r may be served from this member's
// store without a read barrier: every operation of both branches is a
// serializable range, as etcd decides it. A nested txn always takes the
// barrier; a txn of comparisons alone takes none (as etcd's).
func isSerializableTxn(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr == nil || !rr.Serializable {
				return false
			}
		}
	}
	return true
}

// Compact compacts the store's history up to r.Revision, on every member.
func (s *Server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp := &pb.CompactionResponse{}
	return resp, s.propose(ctx, &pb.InternalRaftRequest{Compaction: r}, resp)
}

// setMemberAttributes publishes this member's name and client URLs.
func (s *Server) setMemberAttributes(ctx context.Context) error {
	return s.propose(ctx, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
		Member_ID:        s.id,
		MemberAttributes: &membershippb.Attributes{Name: s.cfg.Name, ClientUrls: s.cfg.ClientURLs},
	}}, nil)
}

// propose replicates one request and decodes the leader's apply result into
// resp.
func (s *Server) propose(ctx context.Context, r *pb.InternalRaftRequest, resp proto.Message) error {
	data, err := encodeRequest(r)
	if err != nil {
		return err
	}
	if len(data) > s.cfg.MaxRequestBytes {
		return ErrRequestTooLarge
	}
	return s.proposePayload(ctx, data, resp)
}

// proposeMemberChange replicates a member-table change and waits until
// this member has applied it too, so that the member list it answers with
// includes the change even when the leader applied it first.
func (s *Server) proposeMemberChange(ctx context.Context, c *memberChange) error {
	data, err := encodeMemberChange(c)
	if err != nil {
		return err
	}
	if err := s.proposePayload(ctx, data, nil); err != nil {
		return err
	}
	return s.readBarrier(ctx)
}

func (s *Server) proposePayload(ctx context.Context, data []byte, resp proto.Message) error {
	ctx, cancel := s.withRequestTimeout(ctx)
	defer cancel()
	res, err := s.node.Propose(ctx, data)
	if err != nil {
		return s.timeoutError(ctx, err)
	}
	return decodeResult(res, resp)
}

// withRequestTimeout bounds a request the way etcd's request timeout does,
// keeping the caller's own deadline when it is shorter.
func (s *Server) withRequestTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.requestTimeout(), raftnode.ErrTimeout)
}

// timeoutError tells a request that ran out of the server's own time
// ("request timed out") from one whose caller gave up.
func (s *Server) timeoutError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(context.Cause(ctx), raftnode.ErrTimeout) {
		return fmt.Errorf("%w: %v", raftnode.ErrTimeout, err)
	}
	return err
}
