// Package raftnode replicates opaque byte payloads through
// github.com/hashicorp/raft into a StateMachine, and offers linearizable
// read barriers, leadership information and membership changes. It knows
// nothing about etcd, keys or requests: the server turns requests into
// payloads and implements the StateMachine.
//
// # Basics
//
// Open a Node with a Config (DefaultConfig has etcd's timings), then either
// Bootstrap it with the initial member list (every initial member, same
// list; HasState tells a restart from a first start) or have an existing
// member add it (AddMember, as a learner first, then PromoteMember).
//
//	cfg := raftnode.DefaultConfig()
//	cfg.ID, cfg.Dir, cfg.ListenAddr, cfg.StateMachine = id, dir, "0.0.0.0:2380", sm
//	n, err := raftnode.Open(ctx, cfg)
//	...
//	res, err := n.Propose(ctx, payload)   // on any member
//	err = n.ReadBarrier(ctx)              // then read sm locally
//
// Propose works on every member. Concurrent proposals on a member are
// packed into one batch (up to MaxProposalBatch payloads and
// MaxBatchBytes); two proposers per member keep one batch replicating while
// the next fills. On the leader a batch is one raft log entry; a follower
// forwards its batch over the peer port and the leader appends it as one
// entry, and each caller gets the result for its own payload. (Forwarded
// batches are appended by the gRPC handler directly rather than re-queued
// behind the leader's own proposers: with an outdated view of the leader
// two members could otherwise forward to each other and wait in a cycle.)
// raft's group commit then writes and replicates the entries of all
// members' batches together. The StateMachine sees each entry as an Entry
// with its payloads, in log order, in batches (raft's BatchingFSM), and
// returns one result per payload.
//
// ReadBarrier makes the next local read linearizable: the leader takes its
// applied index, confirms its leadership with one heartbeat round shared by
// every read waiting at that moment (after a barrier once per term), and a
// follower asks the leader for that index over the peer port and waits
// until its own state machine has applied it. Reads are never served from
// raft's leader lease.
//
// One TCP port carries both raft's transport and gRPC: the first byte of a
// connection chooses. The server can add its own services to that gRPC
// server (Config.RegisterPeerServices) and reach other members' with
// DialPeer or LeaderConn. Network abstracts listening and dialling: plain
// TCP by default, faultnet in tests, TLS later.
//
// Raft's log and stable state live in raft-wal (LogStoreWAL, the default)
// or raft-boltdb (LogStoreBolt) wrapped in raft's LogCache; snapshots in
// raft's file store (two kept). raft-wal measured faster on the same
// three-member loopback cluster with 300-byte payloads (BenchmarkPropose,
// five runs on a 2-core machine shared with other work, load average 8 to
// 15): with 100 callers 5,400–8,100 vs 1,600–5,000 proposals/s, ahead in
// every run; with one caller 140–440 vs 140–390, ahead or level (that case
// is a chain of fsyncs and round trips, and noise dominates). raft-wal
// appends with one fsync where bbolt needs two. Both pass the restart and
// snapshot tests.
//
// Restarts neither re-apply nor skip: raft's NoSnapshotRestoreOnStart is
// set, so raft replays its log from the last snapshot and raftnode skips
// entries at or below StateMachine.AppliedIndex (the state machine persists
// it with its data). If the state machine is behind the newest snapshot
// (its data was lost), Open restores it from that snapshot first.
//
// Heartbeats go through raft's main loop (the transport's heartbeat fast
// path is declined): hashicorp/raft issue #695, where a heartbeat handled
// outside the main loop can change the term behind its back and let two
// logs diverge after a partition heals.
//
// A removed member finds out by itself (hashicorp/raft never tells a
// removed follower): it watches its configuration and, when it has no
// leader, asks the leader whether it is still a member; then its raft stops
// and Removed() is closed.
//
// With Config.StrictReconfigCheck the leader refuses (ErrUnhealthy) an add
// while any voter has been silent for 5 seconds, and the removal of a
// voter that answers when the others that answer would be too few for the
// smaller cluster's quorum; it counts the answers to its own
// AppendEntries, heartbeats included, as etcd counts its peer streams.
//
// # Caveats
//
//   - ErrLeaderChanged, ErrTimeout and ErrStopped from Propose mean the
//     outcome is unknown: the entry may have been appended and may still be
//     committed by the next leader. Retry only what is safe to apply twice,
//     or make payloads idempotent. ErrNoLeader and ErrNotLeader mean nothing
//     was appended.
//   - A read barrier costs one heartbeat round trip to a quorum on the
//     leader, plus on a follower one peer RPC to the leader (shared by the
//     reads waiting there) and the wait for its own apply. hashicorp/raft's
//     heartbeats carry no commit index, so an idle follower would learn of a
//     commit only from the next AppendEntries, up to two CommitTimeouts
//     (10 ms) later; raftnode instead sends a heartbeat round when the last
//     entry in flight is applied, and its transport stamps heartbeats with
//     the commit index, capped at what the follower's log is known to match
//     (see commitStamp). Concurrent reads share the round. The first read after an election also waits for a
//     barrier entry to commit.
//   - One configuration change at a time: raft queues a change until the
//     previous one committed, and raftnode passes the configuration index
//     it checked, so a change that races another fails (retry it).
//     Promotion follows etcd's rule: the learner's applied index must reach
//     90% of the leader's commit index.
//   - Status.AppliedIndex counts entries the state machine saw; raft's no-op
//     and barrier entries never reach it, so it can trail CommitIndex by
//     those.
//   - raft-wal drops compacted entries only with whole segments (64 MiB),
//     so a follower a little behind usually catches up from the log even
//     past a snapshot; only one further behind gets a snapshot.
//   - OnLeaderChange runs on one goroutine in order; raft waits for it, so
//     it must not block. The term passed is the term when it is delivered.
//   - Close on a leader first transfers leadership (bounded by ctx and
//     raft's own timeout). The StateMachine is left to the caller to close
//     after Close returns.
package raftnode
