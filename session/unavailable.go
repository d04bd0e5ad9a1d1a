package session

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IsUnavailable reports whether err says the cluster could not serve a
// request for the moment (no leader, a leader change, a member that cannot
// be reached, a request that timed out on the server) rather than that the
// request was wrong. A read that failed so may be retried; a write may
// have been applied anyway. The caller's own context errors do not count.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// The server's answers that mean "not now".
	for _, u := range []error{
		rpctypes.ErrNoLeader, rpctypes.ErrLeaderChanged, rpctypes.ErrNotLeader, rpctypes.ErrStopped,
		rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost,
		rpctypes.ErrTimeoutWaitAppliedIndex, rpctypes.ErrUnhealthy, rpctypes.ErrTooManyRequests,
	} {
		if errors.Is(err, u) {
			return true
		}
	}
	s, ok := status.FromError(err)
	return ok && s.Code() == codes.Unavailable
}
