// Package mvcc is Concord's multi-version key-value store: etcd's data
// model (revisions, versions, generations, tombstones, txns, compaction)
// on a core/backend.Backend. The raft applier of every member applies the
// same requests in the same order and gets the same state, byte for byte.
//
// # Basics
//
// Open a Store on a Backend; Open rebuilds the in-memory index from the
// key bucket, so it is also how a node comes back after a restart or a
// snapshot restore. The store revision starts at 1. Every write request
// that changes something (Put, a DeleteRange that deletes, a Txn with a
// write, DeleteKeys) is ONE new revision; the ops inside it get sub
// revisions 0, 1, ... Reads, failed compares, read-only txns, deletes of
// nothing and Compact never bump the revision.
//
// Per key the store keeps create_revision, mod_revision, version (1 on
// create, +1 per put, reset by a delete) and lease. A delete writes a
// tombstone that ends the key's generation.
//
// Storage layout (etcd's): the "key" bucket maps revision bytes (8 bytes
// big-endian main, '_', 8 bytes big-endian sub, 't' suffix for a
// tombstone) to a marshaled mvccpb.KeyValue (a tombstone's holds only the
// key). backend.MetaBucket holds "scheduledCompactRev" and
// "finishedCompactRev". An ordered in-memory index (google/btree) maps
// each user key to its generations of revisions; reading the current value
// is one index lookup and one backend get, never a history scan.
//
// Range follows etcd: range_end empty = the key alone, "\x00" = every key
// >= key; limit, revision (0 = current), sort_order/sort_target (a target
// other than KEY with order NONE sorts ascending after the limit was
// applied, as etcd), keys_only (answered from the index: no value, no
// lease, as etcd 3.7), count_only, min/max mod/create revision filters.
// count is every key in the range at that revision, ignoring limit and
// filters; more says there were more matches than returned. Values are
// loaded only for the keys returned unless the sort is by VALUE. The
// header revision is the current store revision, also for historical
// reads.
//
// Txn evaluates all compares (including nested txns' on the chosen path)
// before writing, checks the chosen ops, then applies them as one
// revision. A compare over a range applies to every key in it; with no key,
// VALUE compares fail and other targets compare against 0.
//
// Compact(rev) hides revisions below rev at once and removes superseded
// rows in the background in bounded steps (for each key the newest
// revision <= rev survives, a tombstone exactly at rev included; older
// generations go). HashKV checksums the key bucket deterministically.
// Events serves watch catch-up from storage; OnWrite feeds the watch hub
// live, in revision order.
//
// # Caveats
//
//   - Threading: Put, DeleteRange, Txn, DeleteKeys and Compact are for ONE
//     goroutine, the raft applier (they are serialised by a mutex, but the
//     order of calls is the replicated order). Range, RangeAt, ReadTxn, Events,
//     HashKV, Rev and CompactRevision are safe from any goroutine and never
//     block the writer: readers use an immutable clone of the index
//     published after every write, and backend read views.
//   - Durability is the backend's: a write is visible to readers as soon as
//     the call returns, durable after the backend's next commit. The applier
//     must call Backend.SetConsistentIndex after each entry.
//   - Reads at a revision below CompactRevision fail with ErrCompacted; a
//     read at exactly the compact revision works (as etcd). Events needs
//     fromRev >= CompactRevision (as etcd's watch).
//   - A physical compaction blocks the caller until the rows are removed;
//     writes still interleave with its steps.
//   - The store re-checks requests (CheckTxn with no op limit, CheckPut,
//     ...) so nothing is half-applied; the op-count limit is the edge's.
//   - LeaseHooks and OnWrite run under the store's write lock: they must
//     not call back into the Store's write methods.
//   - Everything applied is deterministic: no map iteration, time or
//     randomness influences what is written.
package mvcc
