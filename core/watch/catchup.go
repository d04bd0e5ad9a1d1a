package watch

import (
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// catchUpLoop brings slow watchers (historical starts, or watchers whose
// stream had no room) up to date from the source, in bounded steps, and
// hands them back to Notify once they reach the hub's revision. It runs
// when woken (a watcher became slow, a starved stream drained) and, while
// slow watchers remain, every CatchUpRetryInterval, which also notices
// compactions that overtook stalled watchers. Owned by the Hub.
func (h *Hub) catchUpLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-h.stop:
			timer.Stop()
			return
		case <-h.wake:
		case <-timer.C:
		}
		for {
			advanced, pending := h.catchUpRound()
			if pending {
				timer.Reset(h.cfg.CatchUpRetryInterval)
			}
			if !advanced {
				break
			}
			select {
			case <-h.stop:
				timer.Stop()
				return
			default:
			}
		}
	}
}

// fetchKey identifies one source read shared by watchers with the same
// range, position and limit (for instance many watchers of one prefix that
// fell behind together).
type fetchKey struct {
	key, end string
	from     int64
	limit    int
}

type fetch struct {
	key, end []byte
	from     int64
	limit    int
	watchers []*watcher

	events []*mvccpb.Event
	next   int64
	err    error
}

// catchUpRound runs one bounded step for up to CatchUpWatchers slow
// watchers whose streams have room. advanced reports that some watcher
// moved (so another round may too); pending that slow watchers remain.
func (h *Hub) catchUpRound() (advanced, pending bool) {
	compactRev := h.src.CompactRevision()

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false, false
	}
	if compactRev > h.compactSeen {
		h.compactSeen = compactRev
		if h.cancelOvertakenLocked(compactRev) {
			advanced = true
		}
	}
	toRev := h.rev
	fetches := make(map[fetchKey]*fetch)
	var order []*fetch
	budget := h.cfg.CatchUpWatchers
	for s := range h.slowStreams {
		if budget == 0 {
			break
		}
		room := s.room()
		if room == 0 {
			continue
		}
		// Share the room among the watchers served this round, so that
		// many watchers of one stream advance together instead of the
		// first one taking it all.
		limit := max(1, min(h.cfg.CatchUpBatchEvents, room/min(s.slowCount, budget)))
		// One pass over the queue as it is now; watchers not finished
		// go to its back, so every watcher of the stream gets a turn.
		for n := len(s.slow); n > 0 && len(s.slow) > 0 && budget > 0; n-- {
			w := s.slow[0]
			s.slow = s.slow[1:]
			if w.state != stateSlow {
				continue // canceled
			}
			if w.minRev > toRev {
				h.promoteLocked(w)
				advanced = true
				continue
			}
			w.state = stateFetching
			budget--
			k := fetchKey{key: string(w.key), end: string(w.end), from: w.minRev, limit: limit}
			f := fetches[k]
			if f == nil {
				f = &fetch{key: w.key, end: w.end, from: w.minRev, limit: limit}
				fetches[k] = f
				order = append(order, f)
			}
			f.watchers = append(f.watchers, w)
		}
	}
	h.mu.Unlock()

	if len(order) > 0 {
		failed := false
		for _, f := range order {
			f.events, f.next, f.err = h.src.Events(f.key, f.end, f.from, toRev, f.limit)
			failed = failed || f.err != nil
		}
		if failed {
			compactRev = h.src.CompactRevision()
		}
		h.mu.Lock()
		for _, f := range order {
			if h.applyFetchLocked(f, toRev, compactRev) {
				advanced = true
			}
		}
		h.mu.Unlock()
	}

	h.mu.Lock()
	pending = h.slowWatchers > 0 && !h.closed
	h.mu.Unlock()
	return advanced, pending
}

// applyFetchLocked queues what one source read brought for each of its
// watchers and moves them on: back to the catch-up queue, to the live path
// when they reached the hub's revision, or out with a compaction cancel.
func (h *Hub) applyFetchLocked(f *fetch, toRev, compactRev int64) (advanced bool) {
	if f.err == nil && (f.next <= f.from || f.next > toRev+1) {
		h.log.Error("watch: source returned an invalid next revision", "from", f.from, "to", toRev, "next", f.next)
		f.err = errBadNextRev
	}
	for _, w := range f.watchers {
		if w.state != stateFetching {
			continue // canceled while reading
		}
		if f.err != nil {
			if f.err != errBadNextRev && (h.cfg.IsCompacted(f.err) || f.from <= compactRev) {
				h.cancelCompactedLocked(w, compactRev)
				advanced = true
				continue
			}
			if f.err != errBadNextRev {
				h.log.Warn("watch: read history for a slow watcher", "key", string(f.key), "from", f.from, "err", f.err)
			}
			h.requeueLocked(w)
			continue
		}
		if evs := w.filter(f.events); len(evs) > 0 {
			r := Response{WatchID: w.id, Revision: f.next - 1, Events: evs}
			if !w.stream.enqueueEvents(w, r) {
				// The live path filled the room meanwhile: read again
				// once the consumer drains.
				h.requeueLocked(w)
				continue
			}
			w.sentSinceTick = true
		}
		w.minRev = f.next
		advanced = true
		if w.minRev > h.rev {
			h.promoteLocked(w)
		} else {
			h.requeueLocked(w)
		}
	}
	return advanced
}

// cancelOvertakenLocked cancels the slow watchers (not being read right now)
// whose next revision a compaction has removed: their consumer may be
// stalled, and waiting for it would only keep them around. Only
// minRev < compactRev is certain whatever the source's convention for the
// compaction revision itself; a read settles the rest.
func (h *Hub) cancelOvertakenLocked(compactRev int64) bool {
	canceled := false
	for s := range h.slowStreams {
		for _, w := range s.slow {
			if w.state == stateSlow && w.minRev < compactRev {
				h.cancelCompactedLocked(w, compactRev)
				canceled = true
			}
		}
	}
	return canceled
}

// cancelCompactedLocked queues etcd's compaction cancel for w and removes
// it. The cancel is queued first so that a stream-wide progress reply that
// the removal may release comes after it.
func (h *Hub) cancelCompactedLocked(w *watcher, compactRev int64) {
	w.stream.enqueueControl(Response{WatchID: w.id, Revision: h.rev, CompactRevision: compactRev, Canceled: true}, nil, false)
	h.removeWatcherLocked(w)
}
