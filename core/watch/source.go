package watch

import "go.etcd.io/etcd/api/v3/mvccpb"

// EventSource is the multi-version store the hub reads history from: for
// watches that start in the past and for watchers that fell behind. The hub
// never calls it while holding its own lock, so a source may take its own
// locks freely; its methods must be safe for concurrent use.
type EventSource interface {
	// Rev returns the store's current revision.
	Rev() int64
	// CompactRevision returns the revision of the last compaction (0 if
	// none).
	CompactRevision() int64
	// Events returns the events with fromRev <= revision <= toRev for keys
	// in [key, end) (etcd range conventions: nil end is the single key,
	// end "\x00" every key >= key), in revision order, at most limit events
	// but never splitting one revision's events; nextRev is the revision to
	// continue from (toRev+1 when the range was exhausted). When fromRev
	// has been compacted it returns an error for which Config.IsCompacted
	// (default: errors.Is(err, ErrCompacted)) is true.
	Events(key, end []byte, fromRev, toRev int64, limit int) (events []*mvccpb.Event, nextRev int64, err error)
	// ValueAt returns key's KeyValue as of revision rev, nil if the key did
	// not exist then. Used for prev_kv.
	ValueAt(key []byte, rev int64) (*mvccpb.KeyValue, error)
}
