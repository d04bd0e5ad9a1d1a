package lease

import (
	"context"
	"maps"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// runCheckpointer is the primary's one writer of LeaseCheckpoint
// requests: checkpoints of remaining TTLs that fell CheckpointInterval
// behind, and clears that renewals wait for. One request is in flight at a
// time, so a clear proposed after a checkpoint of the same lease is applied
// after it. A partial batch of checkpoints waits up to a tenth of the
// interval for company; clears and full batches go at once.
func (l *Lessor) runCheckpointer(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var last time.Time
	for {
		req, pctx, wait := l.takeCheckpointBatch(time.Now(), last)
		if req != nil {
			last = time.Now()
			pctx, cancel := context.WithTimeout(pctx, l.cfg.RequestTimeout)
			err := l.raft.Propose(pctx, &pb.InternalRaftRequest{LeaseCheckpoint: req})
			cancel()
			l.finishCheckpointBatch(req, err)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-l.wakeCheckpoint:
		case <-timer.C:
		}
	}
}

// takeCheckpointBatch builds the next request, or says how long to wait
// for one.
func (l *Lessor) takeCheckpointBatch(now, last time.Time) (*pb.LeaseCheckpointRequest, context.Context, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return nil, nil, time.Hour
	}
	var cps []*pb.LeaseCheckpoint
	for _, id := range slices.Sorted(maps.Keys(l.clears)) {
		if len(cps) == l.cfg.CheckpointBatch {
			break
		}
		ws := l.clears[id]
		delete(l.clears, id)
		if _, ok := l.leases[id]; !ok {
			for _, w := range ws {
				w <- ErrLeaseNotFound
			}
			continue
		}
		cps = append(cps, &pb.LeaseCheckpoint{ID: id, Remaining_TTL: 0})
		l.inFlight[id] = 0
		l.clearing[id] = append(l.clearing[id], ws...)
	}
	clears := len(cps)
	spacing := l.cfg.CheckpointInterval / 10
	_, at, ok := l.checkpoints.Peek()
	due := ok && !at.After(now)
	// A partial batch of checkpoints alone waits for company.
	if clears == 0 && due && now.Sub(last) < spacing && !l.fullBatchDueLocked(now) {
		return nil, nil, spacing - now.Sub(last)
	}
	for len(cps) < l.cfg.CheckpointBatch {
		id, ok := l.checkpoints.PopDue(now)
		if !ok {
			break
		}
		le := l.leases[id]
		_, pending := l.clears[id]
		_, inFlight := l.inFlight[id]
		if le == nil || pending || inFlight {
			continue
		}
		left := le.deadline.Sub(now)
		if left <= 0 {
			// Expiring: the revoke will remove it (a failed revoke is
			// retried by the expiry loop).
			continue
		}
		sec := seconds(left)
		if time.Duration(sec)*time.Second >= le.loggedRemaining() {
			l.checkpoints.Set(id, now.Add(time.Second))
			continue
		}
		cps = append(cps, &pb.LeaseCheckpoint{ID: id, Remaining_TTL: sec})
		l.inFlight[id] = sec
	}
	if len(cps) > 0 {
		return &pb.LeaseCheckpointRequest{Checkpoints: cps}, l.primaryCtx, 0
	}
	if _, at, ok := l.checkpoints.Peek(); ok {
		return nil, nil, max(at.Sub(now), time.Millisecond)
	}
	return nil, nil, time.Hour
}

// fullBatchDueLocked reports whether at least a full batch of checkpoints
// is due.
func (l *Lessor) fullBatchDueLocked(now time.Time) bool {
	if l.checkpoints.Len() < l.cfg.CheckpointBatch {
		return false
	}
	n := 0
	for _, t := range l.checkpoints.h {
		if !t.at.After(now) {
			n++
		}
	}
	return n >= l.cfg.CheckpointBatch
}

// finishCheckpointBatch records a proposal's outcome: renewals waiting for
// a clear get it; a failed checkpoint is retried later, and its lease is
// marked unsure because the proposal may still be applied: a renewal then
// clears it first.
func (l *Lessor) finishCheckpointBatch(req *pb.LeaseCheckpointRequest, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, cp := range req.Checkpoints {
		delete(l.inFlight, cp.ID)
		if cp.Remaining_TTL == 0 {
			for _, w := range l.clearing[cp.ID] {
				w <- err
			}
			delete(l.clearing, cp.ID)
			continue
		}
		if err == nil {
			continue
		}
		if le, ok := l.leases[cp.ID]; ok {
			le.unsure = true
			if l.primary {
				l.checkpoints.Set(cp.ID, now.Add(l.cfg.RetryInterval))
			}
		}
	}
	if err != nil {
		l.log.Warn("lease checkpoint failed", "leases", len(req.Checkpoints), "err", err)
	}
}
