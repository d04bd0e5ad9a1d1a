package server

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/mvcc"
)

// Automatic compaction, etcd's two modes: periodic keeps the history of the
// last AutoCompactionPeriod, revision keeps the last AutoCompactionRevisions
// revisions. Only the leader compacts (a compaction is a proposal, applied
// by every member); followers keep sampling so that a new leader knows which
// revision was current a period ago.

// revisionRetentionInterval is how often revision mode compacts (etcd: 5 min).
const revisionRetentionInterval = 5 * time.Minute

// runCompactor compacts until ctx ends.
func (s *Server) runCompactor(ctx context.Context) {
	interval := revisionRetentionInterval
	if s.cfg.AutoCompactionPeriod > 0 {
		interval = compactionInterval(s.cfg.AutoCompactionPeriod)
	}
	s.log.Info("automatic compaction on", "period", s.cfg.AutoCompactionPeriod,
		"revisions", s.cfg.AutoCompactionRevisions, "interval", interval)
	// samples holds (time, revision) pairs, oldest first, one per interval,
	// for periodic mode.
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			rev := s.currentRevision()
			var target int64
			if s.cfg.AutoCompactionPeriod > 0 {
				samples = append(samples, sample{now, rev})
				// Compact to the newest sample at least a period old.
				cut := now.Add(-s.cfg.AutoCompactionPeriod)
				i := 0
				for i < len(samples) && !samples[i].at.After(cut) {
					target = samples[i].rev
					i++
				}
				if i > 0 {
					samples = samples[i-1:]
				}
			} else {
				target = rev - s.cfg.AutoCompactionRevisions
			}
			if target <= 0 || !s.node.Status().IsLeader || target <= s.compactRevision() {
				continue
			}
			if _, err := s.Compact(ctx, &pb.CompactionRequest{Revision: target}); err != nil && !errors.Is(err, mvcc.ErrCompacted) {
				s.log.Warn("automatic compaction failed", "revision", target, "err", err)
				continue
			}
			s.log.Info("compacted history automatically", "revision", target)
		}
	}
}

// compactionInterval is how often periodic mode samples and compacts, as
// in etcd: the retention itself below an hour, a tenth of it above.
func compactionInterval(period time.Duration) time.Duration {
	if period < time.Hour {
		return period
	}
	return period / 10
}

func (s *Server) currentRevision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.Rev()
}

func (s *Server) compactRevision() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.CompactRevision()
}
