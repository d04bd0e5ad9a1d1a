package mvcc

import "errors"

// Errors callers branch on with errors.Is. Their texts are etcd's, so the
// API edge can map them to rpctypes errors one to one.
var (
	// ErrCompacted: the requested revision has been compacted away.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: the requested revision is newer than the store.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrKeyNotFound: a put with ignore_value or ignore_lease names a key
	// that does not exist (and the empty RequestOp in CheckTxn, as etcd).
	ErrKeyNotFound = errors.New("etcdserver: key not found")
	// ErrLeaseNotFound: a put names a lease that does not exist.
	ErrLeaseNotFound = errors.New("lease not found")
	// ErrTooManyOps: a txn has more operations than allowed (CheckTxn).
	ErrTooManyOps = errors.New("etcdserver: too many operations in txn request")
	// ErrDuplicateKey: a txn writes a key twice in one branch (CheckTxn).
	ErrDuplicateKey = errors.New("etcdserver: duplicate key given in txn request")
	// ErrEmptyKey: a request names no key.
	ErrEmptyKey = errors.New("etcdserver: key is not provided")
	// ErrValueProvided: a put with ignore_value also carries a value.
	ErrValueProvided = errors.New("etcdserver: value is provided")
	// ErrLeaseProvided: a put with ignore_lease also carries a lease.
	ErrLeaseProvided = errors.New("etcdserver: lease is provided")
	// ErrInvalidSortOption: a range names an unknown sort order or target.
	ErrInvalidSortOption = errors.New("etcdserver: invalid sort option")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("mvcc: store closed")
)
