package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
)

// LogStoreKind names the store that keeps raft's log and its stable state
// (current term, vote).
type LogStoreKind string

const (
	// LogStoreWAL is github.com/hashicorp/raft-wal: segment files, one fsync
	// per append. The default: it measured faster (see doc.go).
	LogStoreWAL LogStoreKind = "wal"
	// LogStoreBolt is github.com/hashicorp/raft-boltdb/v2: one bbolt file,
	// two fsyncs per append. Kept for comparison benchmarks.
	LogStoreBolt LogStoreKind = "bolt"
)

// Config is everything a Node needs; it is read once by Open.
type Config struct {
	// ID is this member's etcd-style member ID; raft's ServerID is its
	// lowercase hex form (fmt.Sprintf("%x", ID)).
	ID uint64
	// Dir is raft's own directory (log store and snapshots), e.g.
	// <data-dir>/member/raft. Created if missing.
	Dir string
	// ListenAddr is the peer port's host:port ("127.0.0.1:0" picks a port).
	ListenAddr string
	// AdvertiseAddr is the host:port other members dial (raft's
	// ServerAddress). Empty means the listener's actual address.
	AdvertiseAddr string
	// Network listens and dials for the peer port. Nil means plain TCP.
	// Tests inject faultnet; TLS plugs in here.
	Network Network

	// HeartbeatInterval and ElectionTimeout are etcd's flags (defaults 100 ms
	// and 1 s). hashicorp/raft derives its heartbeat period from its
	// HeartbeatTimeout (period = HeartbeatTimeout/10), and a follower
	// campaigns after one to three HeartbeatTimeouts without contact (its
	// timer is re-armed at random in [HT, 2HT)), where etcd's follower waits
	// one to two ElectionTimeouts. So raft's HeartbeatTimeout is
	// min(ElectionTimeout/2, 10×HeartbeatInterval): heartbeats go out at
	// least every HeartbeatInterval (every 50 ms with the defaults) and a
	// dead leader is replaced within about two ElectionTimeouts, as in
	// etcd. Raft's ElectionTimeout (candidate state) is ElectionTimeout;
	// LeaderLeaseTimeout (a leader without a quorum steps down after it)
	// equals raft's HeartbeatTimeout.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration

	// SnapshotThreshold is etcd's --snapshot-count: committed entries
	// between snapshots (default 10,000).
	SnapshotThreshold uint64
	// SnapshotInterval is how often raft checks SnapshotThreshold (raft
	// staggers it up to 2×). Default 30 s.
	SnapshotInterval time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot, so
	// a follower slightly behind catches up from the log rather than by a
	// whole snapshot (default 5,000, etcd's catch-up entries).
	TrailingLogs uint64

	// MaxProposalBatch is the most payloads packed into one raft log entry
	// (default 256).
	MaxProposalBatch int
	// MaxBatchBytes caps the payload bytes packed into one entry (default
	// 2 MiB, above etcd's 1.5 MiB request limit). A single larger payload
	// still travels alone.
	MaxBatchBytes int

	// LogStore picks raft's log and stable store. Default LogStoreWAL. A
	// directory keeps the kind it was created with; Open refuses a mismatch.
	LogStore LogStoreKind

	// StrictReconfigCheck makes the leader refuse, with ErrUnhealthy, a
	// member change that needs voters it has not heard from lately: adding
	// a member while any voter is out of contact, or removing a voter in
	// contact when the rest in contact would be fewer than the smaller
	// cluster's quorum (etcd's --strict-reconfig-check). The setting of the
	// member that receives the change decides; it travels with a forwarded
	// change.
	StrictReconfigCheck bool

	// StateMachine receives committed payloads. Required.
	StateMachine StateMachine
	// OnLeaderChange is called on every leadership transition of this node,
	// in order, from one goroutine, never concurrently. It must not block:
	// raft waits for it before continuing.
	OnLeaderChange func(isLeader bool, term uint64)
	// RegisterPeerServices lets the caller add its own gRPC services to the
	// peer port (e.g. etcd's Cluster service for joining members). Called
	// once by Open before the port serves.
	RegisterPeerServices func(s *grpc.Server)
	// Logger receives raftnode's and hashicorp/raft's logs. Nil discards.
	Logger *slog.Logger

	// walSegmentSize overrides raft-wal's segment size (64 MiB). raft-wal
	// drops compacted entries only with whole segments, so tests that need
	// a follower to fall behind the leader's log use small segments.
	walSegmentSize int
	// contactWindow overrides how recently a voter must have answered to
	// count as in contact for StrictReconfigCheck (default 5 s, etcd's
	// health interval), so that tests need not wait seconds.
	contactWindow time.Duration
}

// DefaultConfig returns etcd's defaults; ID, Dir, ListenAddr and
// StateMachine must still be set.
func DefaultConfig() Config {
	return Config{
		HeartbeatInterval: 100 * time.Millisecond,
		ElectionTimeout:   1000 * time.Millisecond,
		SnapshotThreshold: 10000,
		SnapshotInterval:  30 * time.Second,
		TrailingLogs:      5000,
		MaxProposalBatch:  256,
		MaxBatchBytes:     2 << 20,
		LogStore:          LogStoreWAL,
	}
}

// Validate reports the first field that is missing or inconsistent.
func (c Config) Validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("member ID must not be 0"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("raft Dir is required"))
	}
	if c.ListenAddr == "" {
		errs = append(errs, errors.New("peer ListenAddr is required"))
	}
	if c.StateMachine == nil {
		errs = append(errs, errors.New("a StateMachine is required"))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("HeartbeatInterval %v must be positive", c.HeartbeatInterval))
	}
	// etcd's own rule. The floor below keeps raft's heartbeat and lease
	// timeouts (half of ElectionTimeout) well above raft's 5 ms minimum.
	if c.ElectionTimeout < 5*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("ElectionTimeout %v must be at least 5×HeartbeatInterval (%v)", c.ElectionTimeout, c.HeartbeatInterval))
	}
	if c.ElectionTimeout < 20*time.Millisecond {
		errs = append(errs, fmt.Errorf("ElectionTimeout %v must be at least 20ms", c.ElectionTimeout))
	}
	if c.SnapshotThreshold == 0 {
		errs = append(errs, errors.New("a positive SnapshotThreshold is required"))
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("SnapshotInterval %v must be at least 5ms", c.SnapshotInterval))
	}
	if c.MaxProposalBatch < 1 || c.MaxProposalBatch > 1<<16 {
		errs = append(errs, fmt.Errorf("MaxProposalBatch %d must be in [1, 65536]", c.MaxProposalBatch))
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxBatchBytes %d must be positive", c.MaxBatchBytes))
	}
	switch c.LogStore {
	case LogStoreWAL, LogStoreBolt:
	default:
		errs = append(errs, fmt.Errorf("LogStore %q must be %q or %q", c.LogStore, LogStoreWAL, LogStoreBolt))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftnode config: %w", err)
	}
	return nil
}

// raftHeartbeatTimeout is raft's HeartbeatTimeout for this config (see the
// HeartbeatInterval field).
func (c Config) raftHeartbeatTimeout() time.Duration {
	return min(c.ElectionTimeout/2, 10*c.HeartbeatInterval)
}

// raftConfig maps c onto hashicorp/raft's Config.
func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(c.ID)
	rc.HeartbeatTimeout = c.raftHeartbeatTimeout()
	rc.ElectionTimeout = c.ElectionTimeout
	// A leader without a quorum steps down after this; no follower
	// campaigns sooner than one HeartbeatTimeout, and reads never rely on
	// it (see ReadBarrier).
	rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	// Idle followers get an empty AppendEntries every one to two
	// CommitTimeouts; a commit reaches them sooner through the heartbeat
	// round that follows it (see commitStamp).
	rc.CommitTimeout = 5 * time.Millisecond
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	rc.ShutdownOnRemove = true
	rc.TrailingLogs = c.TrailingLogs
	rc.SnapshotThreshold = c.SnapshotThreshold
	rc.SnapshotInterval = c.SnapshotInterval
	// The state machine persists its own applied index and skips what it
	// already has; reloading the whole state from a snapshot on every
	// start would only cost time.
	rc.NoSnapshotRestoreOnStart = true
	rc.NoLegacyTelemetry = true
	return rc
}

// serverID is raft's ServerID for an etcd member ID.
func serverID(id uint64) raft.ServerID {
	return raft.ServerID(strconv.FormatUint(id, 16))
}

// memberID parses a raft ServerID back into a member ID.
func memberID(id raft.ServerID) (uint64, error) {
	v, err := strconv.ParseUint(string(id), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("raft server ID %q is not a hex member ID: %w", id, err)
	}
	return v, nil
}
