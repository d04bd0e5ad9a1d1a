package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// MaxTTL is the largest TTL a grant may ask for, in seconds (etcd's).
const MaxTTL = 9_000_000_000

// Raft is what the lessor needs from the replication layer. The leader's
// lessor proposes revocations of expired leases and checkpoints of
// remaining TTLs through it; it never applies anything itself.
type Raft interface {
	// Propose replicates r and returns once this member has applied it,
	// with the error the apply produced (ErrLeaseNotFound for the revoke of
	// a lease that is already gone).
	Propose(ctx context.Context, r *pb.InternalRaftRequest) error
	// Barrier returns once this member has applied every entry committed
	// before the call; on a new leader that includes every entry of the
	// previous terms.
	Barrier(ctx context.Context) error
	// IsLeader reports whether this member leads right now.
	IsLeader() bool
}

// Config configures a Lessor. Everything is set before New.
type Config struct {
	// MinTTL is the shortest lease granted; a grant asking less is raised
	// to it, in whole seconds rounded up. See MinTTLFor for etcd's value.
	MinTTL time.Duration
	// PromoteExtension is added to every lease's remaining TTL when this
	// member becomes the primary, so that clients have time to find the new
	// leader before anything expires. At least the election timeout.
	PromoteExtension time.Duration
	// RevokeRate is the most expired leases the primary revokes per second
	// (Concord's lease-revoke-rate, default 1000).
	RevokeRate int
	// CheckpointInterval is how far the remaining TTL the log knows may lag
	// behind the leader's before the leader checkpoints it (default 5 s).
	// It bounds how much a leader change can postpone an expiry; see the
	// package documentation.
	CheckpointInterval time.Duration
	// CheckpointBatch is the most leases one LeaseCheckpoint request
	// carries (default 1000, etcd's).
	CheckpointBatch int
	// RetryInterval is how long the primary waits before proposing again a
	// revoke or checkpoint whose proposal failed (default 1 s).
	RetryInterval time.Duration
	// RequestTimeout bounds each proposal and barrier (default 7 s, etcd's
	// request timeout for a one-second election timeout).
	RequestTimeout time.Duration
	// Raft replicates the lessor's proposals. Required.
	Raft Raft
	// Logger receives operational messages (discarded when nil).
	Logger *slog.Logger
}

// DefaultConfig returns etcd's defaults for a one-second election timeout
// and Concord's checkpoint policy; Raft must still be set.
func DefaultConfig() Config {
	return Config{
		MinTTL:             MinTTLFor(time.Second, 100*time.Millisecond),
		PromoteExtension:   time.Second,
		RevokeRate:         1000,
		CheckpointInterval: 5 * time.Second,
		CheckpointBatch:    1000,
		RetryInterval:      time.Second,
		RequestTimeout:     7 * time.Second,
	}
}

// Validate reports every missing or nonsensical field.
func (c Config) Validate() error {
	var errs []error
	if c.Raft == nil {
		errs = append(errs, errors.New("Raft is required"))
	}
	if c.MinTTL <= 0 {
		errs = append(errs, fmt.Errorf("MinTTL %v must be positive", c.MinTTL))
	}
	if c.PromoteExtension < 0 {
		errs = append(errs, fmt.Errorf("PromoteExtension %v must not be negative", c.PromoteExtension))
	}
	if c.RevokeRate < 1 {
		errs = append(errs, fmt.Errorf("RevokeRate %d must be at least 1 per second", c.RevokeRate))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("CheckpointInterval %v must be positive", c.CheckpointInterval))
	}
	if c.CheckpointBatch < 1 {
		errs = append(errs, fmt.Errorf("CheckpointBatch %d must be at least 1", c.CheckpointBatch))
	}
	if c.RetryInterval <= 0 || c.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("RetryInterval %v and RequestTimeout %v must be positive", c.RetryInterval, c.RequestTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lease config: %w", err)
	}
	return nil
}

// MinTTLFor is etcd's minimum lease TTL for the given Raft timings: one and
// a half election timeouts, counted in whole heartbeat ticks as etcd does
// ((3 × election ticks) / 2, integer division, times the heartbeat), then
// rounded up to whole seconds. 1 s / 100 ms gives 2 s.
func MinTTLFor(electionTimeout, heartbeat time.Duration) time.Duration {
	if heartbeat <= 0 {
		return time.Second
	}
	ticks := int64(electionTimeout / heartbeat)
	min := time.Duration((3*ticks)/2) * heartbeat
	return time.Duration(math.Max(1, math.Ceil(min.Seconds()))) * time.Second
}

// seconds is d in whole seconds, rounded up.
func seconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
