package etcdapi

import (
	"context"
	"net/url"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

type clusterServer struct {
	pb.UnimplementedClusterServer
	api *API
}

var _ pb.ClusterServer = (*clusterServer)(nil)

func (s *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	members, err := s.api.cfg.Cluster.MemberList(ctx, r.Linearizable)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.MemberListResponse{Header: s.api.header(), Members: members}, nil
}

func (s *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if err := checkPeerURLs(r.PeerURLs); err != nil {
		return nil, err
	}
	m, members, err := s.api.cfg.Cluster.MemberAdd(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.MemberAddResponse{Header: s.api.header(), Member: m, Members: members}, nil
}

func (s *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	members, err := s.api.cfg.Cluster.MemberRemove(ctx, r.ID)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.MemberRemoveResponse{Header: s.api.header(), Members: members}, nil
}

func (s *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := checkPeerURLs(r.PeerURLs); err != nil {
		return nil, err
	}
	members, err := s.api.cfg.Cluster.MemberUpdate(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.MemberUpdateResponse{Header: s.api.header(), Members: members}, nil
}

func (s *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	members, err := s.api.cfg.Cluster.MemberPromote(ctx, r.ID)
	if err != nil {
		return nil, s.api.toGRPCError(err)
	}
	return &pb.MemberPromoteResponse{Header: s.api.header(), Members: members}, nil
}

// checkPeerURLs accepts what etcd's types.NewURLs accepts: at least one
// http(s) or unix(s) URL with a host:port and no path.
func checkPeerURLs(urls []string) error {
	if len(urls) == 0 {
		return rpctypes.ErrGRPCMemberBadURLs
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return rpctypes.ErrGRPCMemberBadURLs
		}
		switch u.Scheme {
		case "http", "https", "unix", "unixs":
		default:
			return rpctypes.ErrGRPCMemberBadURLs
		}
	}
	return nil
}
