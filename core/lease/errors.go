package lease

import "errors"

// Errors callers branch on with errors.Is. The texts of those an apply can
// return are etcd's (api/v3rpc/rpctypes), so that an apply result carried
// as text maps back to the sentinel, and the API edge to etcd's error.
var (
	// ErrLeaseNotFound: no lease with that ID is granted (revoke, renew,
	// time-to-live of an unknown or already revoked lease).
	ErrLeaseNotFound = errors.New("etcdserver: requested lease not found")
	// ErrLeaseExists: a grant names an ID that is already granted.
	ErrLeaseExists = errors.New("etcdserver: lease already exists")
	// ErrLeaseTTLTooLarge: a grant asks for more than MaxTTL seconds.
	ErrLeaseTTLTooLarge = errors.New("etcdserver: too large lease TTL")
	// ErrNotPrimary: the operation needs the primary lessor (the leader's,
	// once it has caught up with the log) and this one is not it. The
	// caller asks the leader instead, or retries once promotion is done.
	ErrNotPrimary = errors.New("lease: not the primary lessor")
	// ErrClosed: the Lessor has been closed.
	ErrClosed = errors.New("lease: lessor closed")
)
