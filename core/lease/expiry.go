package lease

import (
	"context"
	"errors"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// maxRevokesInFlight bounds the revoke proposals waiting for their commit
// at once; raft packs concurrent ones into shared log entries.
const maxRevokesInFlight = 64

// runExpiry is the primary's expiry loop: it takes leases whose deadline
// passed, as fast as the RevokeRate allows, and proposes their revocation.
// A lease stays in the table (and can still be renewed) until its revoke is
// proposed; a failed proposal is retried after RetryInterval.
func (l *Lessor) runExpiry(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ids, pctx, wait := l.takeExpired(time.Now())
		for _, id := range ids {
			l.wg.Go(func() { l.revokeExpired(pctx, id) })
		}
		if len(ids) > 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-l.wakeExpiry:
		case <-timer.C:
		}
	}
}

// takeExpired marks up to the allowed number of expired leases as being
// revoked and returns them, or says how long to wait.
func (l *Lessor) takeExpired(now time.Time) ([]int64, context.Context, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primary {
		return nil, nil, time.Hour
	}
	_, at, ok := l.expiries.Peek()
	if !ok {
		return nil, nil, time.Hour
	}
	if at.After(now) {
		return nil, nil, at.Sub(now)
	}
	slots := maxRevokesInFlight - l.revokes
	if slots <= 0 {
		return nil, nil, time.Hour // a finishing revoke wakes the loop
	}
	allowed := l.pace.take(now, slots)
	if allowed == 0 {
		return nil, nil, l.pace.wait()
	}
	var ids []int64
	for len(ids) < allowed {
		id, ok := l.expiries.PopDue(now)
		if !ok {
			break
		}
		le := l.leases[id]
		if le == nil || le.revoking {
			continue
		}
		le.revoking = true
		le.attempt = make(chan struct{})
		ids = append(ids, id)
	}
	l.pace.giveBack(allowed - len(ids))
	l.revokes += len(ids)
	return ids, l.primaryCtx, 0
}

// revokeExpired proposes the revocation of one expired lease. Success
// removes the lease in the apply; on failure the lease is rescheduled.
func (l *Lessor) revokeExpired(pctx context.Context, id int64) {
	var err error
	if l.raft.IsLeader() {
		ctx, cancel := context.WithTimeout(pctx, l.cfg.RequestTimeout)
		err = l.raft.Propose(ctx, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
		cancel()
	} else {
		err = ErrNotPrimary
	}
	if errors.Is(err, ErrLeaseNotFound) {
		err = nil // revoked by someone else meanwhile
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revokes--
	signal(l.wakeExpiry)
	le := l.leases[id]
	if le == nil || !le.revoking {
		// Revoked (the apply closed the attempt), or the table was
		// reloaded or rescheduled meanwhile.
		return
	}
	le.revoking = false
	close(le.attempt)
	if err == nil {
		// Applied elsewhere? Not here: retry rather than forget it.
		err = errors.New("revoke applied but lease still present")
	}
	if l.primary {
		l.expiries.Set(id, time.Now().Add(l.cfg.RetryInterval))
	}
	l.log.Warn("revoke of expired lease failed; will retry", "lease", id, "err", err)
}

// pacer is a token bucket: rate tokens per second, at most a tenth of a
// second's worth saved up.
type pacer struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newPacer(perSecond int) pacer {
	r := float64(perSecond)
	return pacer{rate: r, burst: max(1, r/10), tokens: max(1, r/10)}
}

// take returns how many of want tokens are available now, and spends them.
func (p *pacer) take(now time.Time, want int) int {
	if !p.last.IsZero() {
		p.tokens = min(p.burst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
	}
	p.last = now
	n := min(want, int(p.tokens))
	p.tokens -= float64(n)
	return n
}

// giveBack returns unused tokens.
func (p *pacer) giveBack(n int) { p.tokens += float64(n) }

// wait is how long until the next token.
func (p *pacer) wait() time.Duration {
	need := 1 - p.tokens
	return max(time.Millisecond, time.Duration(need/p.rate*float64(time.Second)))
}
