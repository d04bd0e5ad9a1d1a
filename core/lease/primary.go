package lease

import (
	"context"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// SetLeader tells the lessor that this member gained or lost leadership.
// It never blocks (raft's leader-change callback calls it): losing
// leadership demotes at once; gaining it starts a promotion that waits
// until this member has applied every earlier entry, then gives every
// lease a deadline of now + its logged remaining TTL + PromoteExtension.
func (l *Lessor) SetLeader(isLeader bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.epoch++
	l.wantLeader = isLeader
	l.demoteLocked()
	if isLeader {
		signal(l.wakePromote)
	}
}

// IsPrimary reports whether this lessor expires and renews leases now.
func (l *Lessor) IsPrimary() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.primary
}

// runPromoter promotes the lessor once a leadership it was told about is
// backed by an applied log.
func (l *Lessor) runPromoter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wakePromote:
		}
		for ctx.Err() == nil {
			l.mu.Lock()
			epoch, want := l.epoch, l.wantLeader
			l.mu.Unlock()
			if !want {
				break
			}
			bctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
			err := l.raft.Barrier(bctx)
			cancel()
			l.mu.Lock()
			if l.epoch != epoch {
				l.mu.Unlock()
				continue
			}
			if err == nil && l.raft.IsLeader() {
				l.promoteLocked()
				l.mu.Unlock()
				break
			}
			l.mu.Unlock()
			l.log.Debug("lease promotion waits", "err", err)
			if !sleep(ctx, l.cfg.RetryInterval/10) {
				return
			}
		}
	}
}

func (l *Lessor) promoteLocked() {
	if l.closed {
		return
	}
	l.primary = true
	l.primaryCtx, l.cancelPrimary = context.WithCancel(context.Background())
	l.scheduleAllLocked(time.Now())
	l.log.Info("lessor promoted", "leases", len(l.leases), "extension", l.cfg.PromoteExtension)
}

// scheduleAllLocked gives every lease a deadline of now + its logged
// remaining TTL + PromoteExtension: never earlier than any earlier leader
// could have promised, and a checkpoint bounds how much later.
func (l *Lessor) scheduleAllLocked(now time.Time) {
	l.expiries, l.checkpoints = newTimerQueue(), newTimerQueue()
	for _, le := range l.leases {
		if le.revoking {
			le.revoking = false
			close(le.attempt)
		}
		le.unsure = false
		le.deadline = now.Add(le.loggedRemaining() + l.cfg.PromoteExtension)
		l.scheduleLocked(le)
	}
	signal(l.wakeExpiry)
	signal(l.wakeCheckpoint)
}

func (l *Lessor) demoteLocked() {
	if !l.primary {
		return
	}
	l.primary = false
	l.cancelPrimary()
	l.expiries, l.checkpoints = newTimerQueue(), newTimerQueue()
	failWaiters(l.clears, ErrNotPrimary)
	failWaiters(l.clearing, ErrNotPrimary)
	clear(l.inFlight)
	l.log.Info("lessor demoted")
}

// scheduleLocked queues le for expiry and for its next checkpoint.
func (l *Lessor) scheduleLocked(le *lease) {
	l.setExpiryLocked(le.id, le.deadline)
	l.setCheckpointLocked(le.id, l.checkpointDue(le))
}

// setExpiryLocked (re)schedules lease id's expiry, waking the expiry loop
// when it becomes the earliest: the loop sleeps until the earliest only.
func (l *Lessor) setExpiryLocked(id int64, at time.Time) {
	l.expiries.Set(id, at)
	if head, _, _ := l.expiries.Peek(); head == id {
		signal(l.wakeExpiry)
	}
}

// setCheckpointLocked (re)schedules lease id's next checkpoint, waking the
// checkpointer when it becomes the earliest.
func (l *Lessor) setCheckpointLocked(id int64, at time.Time) {
	l.checkpoints.Set(id, at)
	if head, _, _ := l.checkpoints.Peek(); head == id {
		signal(l.wakeCheckpoint)
	}
}

// checkpointDue is when the remaining TTL the log knows will exceed the
// primary's by CheckpointInterval: from then on a leader change would
// postpone the expiry by more than that, so a checkpoint is due.
func (l *Lessor) checkpointDue(le *lease) time.Time {
	return le.deadline.Add(-le.loggedRemaining()).Add(l.cfg.CheckpointInterval)
}

// Renew keeps lease id alive for its TTL from now and returns the TTL in
// seconds; primary only (ErrNotPrimary otherwise). A lease whose remaining
// TTL was checkpointed first has the checkpoint cleared through raft, so
// that a later leader cannot expire it early: the first renewal after a
// checkpoint waits for one raft commit, others touch memory only. A lease
// past its deadline that is not being revoked yet is renewed; one whose
// revoke is in flight waits for the outcome.
func (l *Lessor) Renew(ctx context.Context, id int64) (int64, error) {
	for {
		l.mu.Lock()
		if !l.primary || !l.raft.IsLeader() {
			l.mu.Unlock()
			return -1, ErrNotPrimary
		}
		le, ok := l.leases[id]
		if !ok {
			l.mu.Unlock()
			return -1, ErrLeaseNotFound
		}
		if le.revoking {
			attempt := le.attempt
			l.mu.Unlock()
			select {
			case <-attempt:
				continue
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		}
		le.deadline = time.Now().Add(time.Duration(le.ttl) * time.Second)
		l.setExpiryLocked(le.id, le.deadline)
		proposed, inFlight := l.inFlight[id]
		if le.remaining == 0 && !le.unsure && !inFlight {
			l.setCheckpointLocked(le.id, l.checkpointDue(le))
			l.mu.Unlock()
			return le.ttl, nil
		}
		ttl := le.ttl
		done := make(chan error, 1)
		if inFlight && proposed == 0 {
			// A clear proposed after the last checkpoint serves this
			// renewal too.
			l.clearing[id] = append(l.clearing[id], done)
		} else {
			l.clears[id] = append(l.clears[id], done)
			l.checkpoints.Remove(id)
			signal(l.wakeCheckpoint)
		}
		l.mu.Unlock()
		select {
		case err := <-done:
			if err != nil {
				return -1, err
			}
			return ttl, nil
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
}

// TimeToLive answers a LeaseTimeToLiveRequest from the primary's view: TTL
// is the remaining time to the deadline in whole seconds (truncated, as
// etcd), GrantedTTL the granted one, Keys the attached keys (sorted) when
// asked. ErrNotPrimary off the primary, ErrLeaseNotFound for an unknown
// lease.
func (l *Lessor) TimeToLive(r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary || !l.raft.IsLeader() {
		return nil, ErrNotPrimary
	}
	le, ok := l.leases[r.ID]
	if !ok {
		return nil, ErrLeaseNotFound
	}
	resp := &pb.LeaseTimeToLiveResponse{
		Header:     &pb.ResponseHeader{},
		ID:         le.id,
		TTL:        max(0, int64(time.Until(le.deadline).Seconds())),
		GrantedTTL: le.ttl,
	}
	if r.Keys {
		resp.Keys = sortedKeys(le)
	}
	return resp, nil
}

// failWaiters answers and forgets every waiter of ws.
func failWaiters(ws map[int64][]chan error, err error) {
	for id, chans := range ws {
		for _, ch := range chans {
			ch <- err
		}
		delete(ws, id)
	}
}

// signal wakes the goroutine waiting on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sleep waits d; false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
