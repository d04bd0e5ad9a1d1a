// Package backend is Concord's per-node storage file: one bbolt database
// with an in-memory write buffer in front of it and a background flusher
// that commits the buffer in groups.
//
// # Basics
//
// Open a Backend with a Config from DefaultConfig. Data lives in buckets,
// named by Bucket constants that each package declares (mvcc: "key";
// MetaBucket is shared). The raft applier writes with Put and Delete and
// ends every applied entry with SetConsistentIndex(index, term); any
// goroutine reads through Read (a consistent ReadView with Get and ordered
// Range iteration), or the copying helpers Get and Range.
//
// Writes land in a pending buffer (google/btree, copy-on-write) and are
// visible to every reader at once, merged over bbolt; a buffered Delete
// hides the committed key. The flusher swaps the pending buffer out and
// commits it in one bbolt transaction every Config.BatchInterval (100 ms)
// or when Config.BatchLimit (10,000) writes are buffered, off the apply
// path: the writer never waits for bbolt. A reader takes O(1) clones of the
// buffers under a short lock and then opens a bbolt read transaction; it
// never blocks the writer.
//
// Commit forces a synchronous commit. BeginSnapshot/Snapshot commit and
// then stream a consistent image of the file (bbolt's Tx.WriteTo);
// WriteSnapshotFile installs such a stream at a path (temp file, fsync,
// rename) so a caller can close its Backend, replace the file and Open it
// again. Defrag rewrites the file compactly; Size and SizeInUse report its
// size; Hash checksums the content.
//
// # Caveats
//
//   - Durability: a write is durable only after the commit that carries it.
//     The raft log is the write-ahead log: after a crash, up to
//     BatchInterval of applied writes are lost and re-applied from the log.
//     ConsistentIndex after Open says exactly where durable state ends.
//   - Consistency: the consistent index is written in the same bbolt
//     transaction as the data it covers. Once SetConsistentIndex has been
//     called, the flusher commits only at consistent-index boundaries (it
//     waits for the next SetConsistentIndex if the applier is mid-entry), so
//     on disk data and index always agree. Put/DeleteIdempotent are for
//     writes that may be committed anywhere (compaction). Before the first
//     SetConsistentIndex (e.g. in tools and tests) every write may be
//     committed at any time.
//   - Commit, BeginSnapshot and Close commit everything buffered, ignoring
//     those boundaries: call them from the applier between entries, or when
//     no applier runs.
//   - Threading: Put, Delete and SetConsistentIndex are meant for one
//     goroutine (the applier); they are safe to call from others (e.g. a
//     compaction goroutine serialised with the applier by its owner). Reads
//     are safe from any goroutine. Inside a Read callback, do not open
//     another view, snapshot or Get on the same Backend: Defrag waits for
//     open views, and a nested one can deadlock against it.
//   - The buffer has no hard cap: if a commit is slow, writes keep
//     accumulating in memory until it finishes.
//   - A failed commit (disk full) is logged and retried; the writes stay
//     buffered and readable. Commit returns the error.
//   - Defrag pauses readers briefly (it waits for open views, then swaps
//     the file) and delays commits for the time of the copy, not writes.
//   - Only flat buckets are supported (no nested buckets).
package backend
