package watch

import "errors"

// Errors callers branch on. The texts of ErrWatcherDuplicateID,
// ErrEmptyWatcherRange and ErrWatcherNotExist are etcd's own (its mvcc
// package), because etcd sends them to clients as a cancel_reason; they are
// returned unwrapped so err.Error() stays exact.
var (
	// ErrWatcherDuplicateID: the client chose a watch_id already in use on
	// the stream.
	ErrWatcherDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")
	// ErrEmptyWatcherRange: range_end is set and not greater than key.
	ErrEmptyWatcherRange = errors.New("mvcc: watcher range is empty")
	// ErrWatcherNotExist: Cancel named a watch_id that is not active on the
	// stream.
	ErrWatcherNotExist = errors.New("mvcc: watcher does not exist")
	// ErrNegativeStartRevision: start_revision < 0. etcd answers it with
	// the compaction cancel reason (see CompactedCancelReason).
	ErrNegativeStartRevision = errors.New("watch: negative start revision")
	// ErrStreamClosed: the Stream was closed.
	ErrStreamClosed = errors.New("watch: stream closed")
	// ErrHubClosed: the Hub was closed.
	ErrHubClosed = errors.New("watch: hub closed")
	// ErrCompacted is what an EventSource may return (wrapped or not) when
	// the requested history has been compacted. A source with its own
	// sentinel sets Config.IsCompacted instead.
	ErrCompacted = errors.New("watch: required revision has been compacted")
)

// errBadNextRev marks a source read whose nextRev broke the EventSource
// contract; the watcher retries.
var errBadNextRev = errors.New("watch: source returned an invalid next revision")
