// Package lease is Concord's lease table: etcd's leases (grant, revoke,
// keepalive, time-to-live, keys attached by puts) replicated through Raft,
// with expiry decided by the leader alone.
//
// # Basics
//
// Every member holds a Lessor with the same table, changed only by the
// Raft applier: Grant, Revoke and Checkpoint apply etcd's LeaseGrant,
// LeaseRevoke and LeaseCheckpoint requests, and the lessor is the mvcc
// store's LeaseHooks (Exists, Attach, Detach), so a put with a lease
// attaches its key and a delete detaches it. A lease is its ID, its granted
// TTL (whole seconds) and the last checkpointed remaining TTL; it is stored
// in the backend's "lease" bucket in etcd's layout (8-byte big-endian ID,
// leasepb.Lease bytes), in the same batch as the entry that changed it.
// Attached keys are not stored: the store re-attaches them when it opens,
// so open the store after Recover. Recover reloads the table from a
// backend: at start and after a Raft snapshot replaced the database.
//
// The caller prepares a grant before proposing it (PrepareGrant): an ID is
// picked when the client gave none (positive, unique to the proposing
// member, not granted yet) and a TTL below MinTTL is raised to it (etcd's
// floor is 1.5 election timeouts, see MinTTLFor), so the apply is the same
// everywhere. A TTL above MaxTTL is refused by the apply with
// ErrLeaseTTLTooLarge, an existing ID with ErrLeaseExists. Revoke deletes
// every attached key in ONE revision (KeyDeleter, i.e.
// mvcc.Store.DeleteKeys, which also feeds the watchers their DELETE
// events) and removes the lease.
//
// Time is not replicated. The primary, the lessor of the leader once it
// has applied every earlier entry (SetLeader(true) starts a promotion that
// waits for Raft's barrier), keeps a deadline per lease and:
//   - expires leases: an expired lease is revoked by proposing a
//     LeaseRevoke through Raft, at most RevokeRate per second (a token
//     bucket; 64 proposals in flight), so a mass expiry is spread out
//     instead of stalling the cluster; a failed proposal is retried after
//     RetryInterval. Followers never expire anything.
//   - renews (Renew): deadline = now + TTL. Renewals are not written to
//     the log, except the first one after a checkpoint of that lease,
//     which clears the checkpoint through Raft before it answers (batched
//     with other clears and checkpoints).
//   - answers TimeToLive from its deadlines.
//   - checkpoints: when the remaining TTL the log knows exceeds the
//     primary's by more than CheckpointInterval, the lease's current
//     remaining TTL is proposed in a LeaseCheckpoint request (up to
//     CheckpointBatch leases per request, one request in flight; a partial
//     batch waits up to a tenth of the interval for company).
//
// A new primary gives every lease the deadline now + its logged remaining
// TTL (the checkpoint, or the whole TTL) + PromoteExtension (at least the
// election timeout): nothing expires earlier than an earlier leader could
// have promised, clients get time to find the new leader, and nothing
// expires in a burst at the change.
//
// # Caveats
//
//   - The expiry bound. A lease that nobody renews is revoked no later than
//     TTL + n × (1.1 × CheckpointInterval + PromoteExtension + 1 s + F)
//     after its grant, plus its wait in the revoke queue, where n is the
//     number of leader changes during its life and F the time each took
//     (from the old leader's last commit to the new leader's promotion:
//     one or two election timeouts when a leader dies, a few milliseconds
//     for a transfer). The 1 s is checkpoints' rounding up to whole
//     seconds. With Concord's defaults (election timeout 1 s, checkpoints
//     every 5 election timeouts) that is about TTL + 9 s per leader change.
//     Without checkpoints (etcd's default for leases shorter than five
//     minutes) every new leader restarts the whole TTL, and a lease never
//     expires while leaders change more often than its TTL. Leader changes
//     faster than PromoteExtension + F still postpone expiry indefinitely:
//     each one grants that extension.
//   - The cost of checkpoints: a lease renewed less often than every
//     CheckpointInterval (clientv3 renews every TTL/3, so leases with TTLs
//     above three intervals) costs two checkpoint entries per renewal, a
//     checkpoint and its clear, batched with other leases'; the renewal
//     after a checkpoint waits for one Raft commit. A lease nobody renews
//     is checkpointed once per interval until it expires.
//   - Rate limit: at the default 1000 revocations per second, 10,000 leases
//     that expire together are gone after about 10 s. A lease past its
//     deadline but still queued can be renewed; a renewal of a lease whose
//     revoke is in flight waits for the outcome.
//   - Safety of renewals rests on leadership: a renewal is answered only by
//     the primary, which checks that its member still leads; a deposed
//     leader that has not noticed yet may answer renewals for at most
//     Raft's leader lease, and the new leader's extension covers them. No
//     heartbeat round is made per renewal (etcd makes one).
//   - Deadlines follow the local monotonic clock of the leader; members
//     whose clocks run at very different rates shift expiries accordingly.
//   - Threading: Grant, Revoke, Checkpoint, Recover and the hooks belong to
//     the Raft applier; the hooks run under the store's write lock and
//     Revoke calls the store, so the lessor never holds its own lock while
//     calling the store (lock order: store write lock, lessor, backend).
//     Everything else is safe from any goroutine. SetLeader never blocks.
//     Close stops the lessor's goroutines (promotion, expiry, checkpoints,
//     revoke proposals) and waits for them.
package lease
