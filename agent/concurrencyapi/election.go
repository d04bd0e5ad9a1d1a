package concurrencyapi

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/session"
)

// electionServer is etcd's Election service on package election.
type electionServer struct {
	epb.UnsafeElectionServer // a method added to the service fails the build
	s                        *Service
}

var _ epb.ElectionServer = (*electionServer)(nil)

// Campaign enters the caller's lease as a candidate, NAME/<lease-hex> (as
// etcd's concurrency.Election names it), and answers once it leads. A
// candidacy the lease already has is taken over with the new value.
func (es *electionServer) Campaign(ctx context.Context, req *epb.CampaignRequest) (*epb.CampaignResponse, error) {
	var l *election.Leadership
	var lease clientv3.LeaseID
	err := es.s.acquire(ctx, "campaign", req.Lease, func(ctx context.Context, sess *session.Session) (func(context.Context) error, error) {
		lease = sess.Lease()
		var err error
		l, err = election.New(sess, string(req.Name)).Campaign(ctx, string(req.Value))
		if err != nil {
			return nil, err
		}
		return l.Resign, nil
	})
	if err != nil {
		return nil, err
	}
	// Led at the header's revision, as etcd's answer says.
	return &epb.CampaignResponse{
		Header: l.Header(),
		Leader: &epb.LeaderKey{
			Name:  req.Name,
			Key:   []byte(l.Key()),
			Rev:   int64(l.Token()),
			Lease: int64(lease),
		},
	}, nil
}

// Proclaim replaces the leader's value, fenced on the LeaderKey's create
// revision: the transaction election.Leadership.Proclaim makes, here for a
// leadership won by an earlier call.
func (es *electionServer) Proclaim(ctx context.Context, req *epb.ProclaimRequest) (*epb.ProclaimResponse, error) {
	s := es.s
	if req.Leader == nil {
		return nil, errMissingLeaderKey
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	lk := req.Leader
	key := string(lk.Key)
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", lk.Rev)).
		Then(clientv3.OpPut(key, string(req.Value), clientv3.WithLease(clientv3.LeaseID(lk.Lease)))).Commit()
	if err != nil {
		return nil, s.grpcError(ctx, "proclaim", err)
	}
	if !resp.Succeeded {
		return nil, errNotLeader
	}
	return &epb.ProclaimResponse{Header: resp.Header}, nil
}

// Resign deletes the leader's key if it is still the LeaderKey's (fenced
// on its create revision), so that the next candidate leads. As etcd's,
// it answers success when the leadership had already ended.
func (es *electionServer) Resign(ctx context.Context, req *epb.ResignRequest) (*epb.ResignResponse, error) {
	s := es.s
	if req.Leader == nil {
		return nil, errMissingLeaderKey
	}
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	key := string(req.Leader.Key)
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", req.Leader.Rev)).
		Then(clientv3.OpDelete(key)).Commit()
	if err != nil {
		return nil, s.grpcError(ctx, "resign", err)
	}
	return &epb.ResignResponse{Header: resp.Header}, nil
}

// Leader answers the current leader's key-value.
func (es *electionServer) Leader(ctx context.Context, req *epb.LeaderRequest) (*epb.LeaderResponse, error) {
	s := es.s
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	li, err := election.Leader(ctx, s.cli, string(req.Name))
	if err != nil {
		return nil, s.grpcError(ctx, "leader", err)
	}
	hdr, kv, err := li.KeyValue(ctx, s.cli, clientv3.WithSerializable())
	if err != nil {
		return nil, s.grpcError(ctx, "leader", err)
	}
	return &epb.LeaderResponse{Header: hdr, Kv: kv}, nil
}

// Observe streams the leader's key-value now and at every change of
// leader or of its value, until the caller ends the stream.
func (es *electionServer) Observe(req *epb.LeaderRequest, stream epb.Election_ObserveServer) error {
	s := es.s
	ctx, end, err := s.begin(stream.Context())
	if err != nil {
		return err
	}
	defer end() // also ends the observer, should Send fail
	for li := range election.Observe(ctx, s.cli, string(req.Name)) {
		if !li.HasLeader() {
			continue // as etcd's: the stream waits for the next leader
		}
		hdr, kv, err := li.KeyValue(ctx, s.cli, clientv3.WithSerializable())
		if err != nil {
			return s.grpcError(ctx, "observe", err)
		}
		if err := stream.Send(&epb.LeaderResponse{Header: hdr, Kv: kv}); err != nil {
			return err
		}
	}
	return s.grpcError(ctx, "observe", context.Cause(ctx))
}
