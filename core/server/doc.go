// Package server ties Concord's replicated core together: it opens the
// member's bbolt backend and multi-version store, starts the Raft node, and
// is the state machine that applies etcd's InternalRaftRequest entries from
// the Raft log. It offers the operations the etcd API serves (KV, Watch,
// Lease, Cluster, Maintenance) with etcd's semantics, keeps the replicated
// member table (IDs, names, peer and client URLs), feeds the watch hub from
// every applied revision, and runs the lease table (expiry on the leader,
// keepalives forwarded from followers over the peer port) and automatic
// compaction.
//
// # Basics
//
// Writes become one InternalRaftRequest each, proposed through the Raft node
// (forwarded to the leader when this member follows) and answered with the
// leader's apply result. Linearizable reads wait on the Raft read barrier and
// then read the local store; serializable reads read it at once.
//
// # Caveats
//
// Membership changes are two steps, a member-table entry in the log and a
// Raft configuration change; a failure between them is undone best-effort.
// Only one configuration change runs at a time.
package server
