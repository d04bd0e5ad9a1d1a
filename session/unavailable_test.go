package session_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/concordkv/concord/session"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{rpctypes.ErrNoLeader, true},
		{fmt.Errorf("lock x: %w", rpctypes.ErrLeaderChanged), true},
		{rpctypes.ErrTimeout, true},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), true},
		{fmt.Errorf("enqueue: %w", status.Error(codes.Unavailable, "connection reset")), true},
		{rpctypes.ErrKeyNotFound, false},
		{rpctypes.ErrPermissionDenied, false},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{context.Canceled, false},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), false},
		{errors.New("something else"), false},
	} {
		if got := session.IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
