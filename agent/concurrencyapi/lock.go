package concurrencyapi

import (
	"context"

	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
)

// lockServer is etcd's Lock service on lock.Mutex.
type lockServer struct {
	v3lockpb.UnsafeLockServer // a method added to the service fails the build
	s                         *Service
}

var _ v3lockpb.LockServer = (*lockServer)(nil)

// Lock waits until the caller's lease holds the lock name and answers its
// key, NAME/<lease-hex>: the key etcd's concurrency.Mutex uses for that
// lease, so that Lock calls with one lease are one acquisition, and every
// etcd client of the same NAME is excluded.
func (ls *lockServer) Lock(ctx context.Context, req *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	var m *lock.Mutex
	err := ls.s.acquire(ctx, "lock", req.Lease, func(ctx context.Context, sess *session.Session) (func(context.Context) error, error) {
		m = lock.NewMutex(sess, string(req.Name), lock.WithLeaseKey())
		_, err := m.Lock(ctx)
		return m.Unlock, err
	})
	if err != nil {
		return nil, err
	}
	// Held at the header's revision, as etcd's answer is.
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the key a Lock call answered, as etcd's does; unlocking a
// key that is gone is not an error.
func (ls *lockServer) Unlock(ctx context.Context, req *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	s := ls.s
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	resp, err := s.cli.Delete(ctx, string(req.Key))
	if err != nil {
		return nil, s.grpcError(ctx, "unlock", err)
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}
