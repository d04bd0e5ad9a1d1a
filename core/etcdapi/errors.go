package etcdapi

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/core/lease"
	"github.com/concordkv/concord/core/mvcc"
	"github.com/concordkv/concord/core/raftnode"
	"github.com/concordkv/concord/core/server"
)

// grpcErrors maps the core's sentinel errors to the gRPC errors etcd answers
// for them; clientv3 turns these back into its own errors by message text.
var grpcErrors = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},

	{lease.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound},
	{lease.ErrLeaseExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrLeaseTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{lease.ErrNotPrimary, rpctypes.ErrGRPCNotLeader},

	{raftnode.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{raftnode.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{raftnode.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{raftnode.ErrStopped, rpctypes.ErrGRPCStopped},
	{raftnode.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{raftnode.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{raftnode.ErrBadTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
	{raftnode.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},

	{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{server.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{server.ErrMemberExists, rpctypes.ErrGRPCMemberExist},
	{server.ErrPeerURLExists, rpctypes.ErrGRPCPeerURLExist},
	{server.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{server.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{server.ErrBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	{server.ErrNotEnoughStarted, rpctypes.ErrMemberNotEnoughStarted},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
}

// toGRPCError turns an error from the core into what an etcd client expects.
func (a *API) toGRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, m := range grpcErrors {
		if errors.Is(err, m.err) {
			return m.grpc
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return rpctypes.ErrGRPCCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return rpctypes.ErrGRPCDeadlineExceeded
	}
	a.log.Warn("unmapped error answered as Unknown", "err", err)
	return status.Error(codes.Unknown, err.Error())
}
