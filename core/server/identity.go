package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"github.com/concordkv/concord/core/raftnode"
)

// identity is what a member must know about itself before Raft starts and
// that the replicated database cannot hold (a snapshot from the leader
// replaces the database wholesale).
type identity struct {
	MemberID uint64 `json:"member_id"`
}

// resolveIdentity returns this member's ID: from the identity file on a
// restart; computed from --initial-cluster for a new cluster; asked of the
// running cluster for a member that was added with `member add`.
func (s *Server) resolveIdentity(ctx context.Context, hasRaftState bool) (uint64, error) {
	path := identityPath(s.cfg.DataDir)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		var id identity
		if err := json.Unmarshal(data, &id); err != nil || id.MemberID == 0 {
			return 0, fmt.Errorf("read member identity %s: corrupt (%v)", path, err)
		}
		return id.MemberID, nil
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("read member identity: %w", err)
	case hasRaftState:
		return 0, fmt.Errorf("data dir %s has a raft log but no %s: refusing to guess this member's ID", s.cfg.DataDir, path)
	}

	var id uint64
	if s.cfg.NewCluster {
		for _, m := range initialMembers(s.cfg.InitialCluster, s.cfg.InitialClusterToken) {
			if m.Name == s.cfg.Name {
				id = m.ID
			}
		}
	} else {
		id, err = s.askClusterForID(ctx)
		if err != nil {
			return 0, err
		}
	}
	data, _ = json.Marshal(identity{MemberID: id})
	if err := writeFileSync(path, data); err != nil {
		return 0, fmt.Errorf("write member identity: %w", err)
	}
	return id, nil
}

// askClusterForID asks the members named in --initial-cluster for the
// member list and finds the entry `member add` created for our peer URLs.
func (s *Server) askClusterForID(ctx context.Context) (uint64, error) {
	var errs []error
	deadline := time.Now().Add(s.requestTimeout())
	for time.Now().Before(deadline) {
		for _, im := range s.cfg.InitialCluster {
			if im.Name == s.cfg.Name {
				continue
			}
			for _, u := range im.PeerURLs {
				addr, err := hostPort(u)
				if err != nil {
					continue
				}
				id, err := s.askPeerForID(ctx, addr)
				if err == nil {
					return id, nil
				}
				errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			}
		}
		if len(errs) == 0 {
			return 0, errors.New("join existing cluster: --initial-cluster names no other member to ask")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("join existing cluster: no member knows this one (was it added with `member add`?): %w", errors.Join(errs...))
}

var errNotAMember = errors.New("this member's peer URLs are not in the member list")

func (s *Server) askPeerForID(ctx context.Context, addr string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := raftnode.DialPeer(ctx, s.cfg.PeerNetwork, addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	resp, err := pb.NewClusterClient(conn).MemberList(ctx, &pb.MemberListRequest{})
	if err != nil {
		return 0, err
	}
	for _, m := range resp.Members {
		for _, u := range m.PeerURLs {
			if slices.Contains(s.cfg.PeerURLs, u) {
				return m.ID, nil
			}
		}
	}
	return 0, errNotAMember
}

// peerCluster answers MemberList on the peer port for joining members.
type peerCluster struct {
	pb.UnimplementedClusterServer
	s *Server
}

func registerPeerCluster(g *grpc.Server, s *Server) {
	pb.RegisterClusterServer(g, &peerCluster{s: s})
}

func (p *peerCluster) MemberList(context.Context, *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	return &pb.MemberListResponse{
		Header:  &pb.ResponseHeader{ClusterId: p.s.members.ClusterID(), MemberId: p.s.id},
		Members: p.s.members.List(),
	}, nil
}

// writeFileSync writes a small file durably: temp file, fsync, rename.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
