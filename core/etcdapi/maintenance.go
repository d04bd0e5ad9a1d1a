package etcdapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	api *API
}

var _ pb.MaintenanceServer = (*maintenanceServer)(nil)

func (s *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	resp, err := s.api.cfg.Maintenance.Status(ctx)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *maintenanceServer) Hash(ctx context.Context, _ *pb.HashRequest) (*pb.HashResponse, error) {
	h, err := s.api.cfg.Maintenance.Hash(ctx)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.HashResponse{Header: s.api.header(), Hash: h}, nil
}

func (s *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	resp, err := s.api.cfg.Maintenance.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	s.api.fill(&resp.Header)
	return resp, nil
}

func (s *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := s.api.cfg.Maintenance.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.MoveLeaderResponse{Header: s.api.header()}, nil
}

// Alarm answers with no alarms: Concord raises none yet (the NOSPACE quota
// alarm belongs to the operations issue), and etcdctl's `alarm list` and
// health checks call it.
func (s *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	if r.Action != pb.AlarmRequest_GET {
		return nil, rpctypes.ErrGRPCNotCapable
	}
	return &pb.AlarmResponse{Header: s.api.header()}, nil
}
