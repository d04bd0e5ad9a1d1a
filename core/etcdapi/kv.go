package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

type kvServer struct {
	pb.UnimplementedKVServer
	api *API
}

var _ pb.KVServer = (*kvServer)(nil)

func (s *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := checkRange(r); err != nil {
		return nil, err
	}
	resp, err := s.api.cfg.KV.Range(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

// rangeStreamChunk is how many keys one RangeStream message carries.
const rangeStreamChunk = 1000

// RangeStream answers a range as a stream of chunks, all read at one
// revision: the first chunk carries the header, the last one count and more.
func (s *kvServer) RangeStream(r *pb.RangeRequest, stream pb.KV_RangeStreamServer) error {
	if err := checkRange(r); err != nil {
		return err
	}
	resp, err := s.api.cfg.KV.Range(stream.Context(), r)
	if err != nil {
		return s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	kvs := resp.Kvs
	for first := true; first || len(kvs) > 0; first = false {
		n := min(len(kvs), rangeStreamChunk)
		chunk := &pb.RangeResponse{Kvs: kvs[:n]}
		if first {
			chunk.Header = resp.Header
		}
		kvs = kvs[n:]
		if len(kvs) == 0 {
			chunk.More, chunk.Count = resp.More, resp.Count
		}
		if err := stream.Send(&pb.RangeStreamResponse{RangeResponse: chunk}); err != nil {
			return err
		}
	}
	return nil
}

func (s *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if err := checkPut(r); err != nil {
		return nil, err
	}
	resp, err := s.api.cfg.KV.Put(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := checkDelete(r); err != nil {
		return nil, err
	}
	resp, err := s.api.cfg.KV.DeleteRange(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if err := s.api.checkTxn(r); err != nil {
		return nil, err
	}
	resp, err := s.api.cfg.KV.Txn(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	resp, err := s.api.cfg.KV.Compact(ctx, r)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}
