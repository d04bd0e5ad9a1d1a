package watch

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Hub fans applied revisions out to watchers. The applier feeds it with
// Notify; each client stream gets a Stream. See the package documentation
// for the guarantees.
type Hub struct {
	cfg Config
	src EventSource
	log *slog.Logger

	// mu guards the fields below, the hub-guarded fields of every Stream
	// and every watcher's sync state. Lock order: Hub.mu, then Stream.mu.
	// It is never held across a Source call or a channel send that can
	// block, so Notify only ever waits for other short critical sections.
	mu sync.Mutex
	// rev is the last revision passed to Notify: every synced watcher has
	// been handed every matching event up to it.
	rev    int64
	closed bool
	// synced holds the watchers that get live events from Notify.
	synced watcherGroup
	// streams are the open streams; slowStreams those with at least one
	// watcher that is being caught up; deferredProgress those owing a
	// reply to a progress request until all their watchers are synced.
	streams          map[*Stream]struct{}
	slowStreams      map[*Stream]struct{}
	deferredProgress map[*Stream]struct{}
	// compactSeen is the compaction revision slow watchers were last
	// checked against.
	compactSeen  int64
	watchers     int
	slowWatchers int
	fellBehind   int64
	// touched is Notify's scratch list of streams with a batch.
	touched []*Stream

	// bufferedEvents counts events queued on all streams and not yet
	// received by their consumers.
	bufferedEvents atomic.Int64

	wake chan struct{} // cap 1: catch-up may have work
	stop chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// New starts a hub whose revision starts at cfg.Source.Rev(): the applier's
// next Notify must be for the revision after it.
func New(cfg Config) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:              cfg,
		src:              cfg.Source,
		log:              cfg.Logger,
		rev:              cfg.Source.Rev(),
		compactSeen:      cfg.Source.CompactRevision(),
		synced:           newWatcherGroup(),
		streams:          make(map[*Stream]struct{}),
		slowStreams:      make(map[*Stream]struct{}),
		deferredProgress: make(map[*Stream]struct{}),
		wake:             make(chan struct{}, 1),
		stop:             make(chan struct{}),
	}
	h.wg.Go(h.catchUpLoop)
	return h, nil
}

// Close closes every stream and stops the hub's goroutines, waiting for
// them. Notify after Close does nothing.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.wg.Wait()
		return
	}
	h.closed = true
	streams := make([]*Stream, 0, len(h.streams))
	for s := range h.streams {
		streams = append(streams, s)
	}
	close(h.stop)
	h.mu.Unlock()
	for _, s := range streams {
		s.Close()
	}
	h.wg.Wait()
}

// Notify hands the hub the events of one applied revision. The applier calls
// it after every revision-bumping write, in revision order, from one
// goroutine; events must not be modified afterwards (they are shared with
// every watcher). It never blocks on consumers or does I/O: it costs
// O(matching watchers). A watcher whose stream has no room is moved to
// catch-up instead of being waited for.
//
// A revision lower than or equal to the last one is ignored. A revision
// that skips ahead (for instance after installing a raft snapshot; events
// may be nil) sends every synced watcher to catch up from the Source.
func (h *Hub) Notify(rev int64, events []*mvccpb.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if rev <= h.rev {
		h.log.Warn("watch: ignoring notify for an old revision", "rev", rev, "hub_rev", h.rev)
		return
	}
	demoted := false
	if rev > h.rev+1 {
		// Revisions between were never notified: nobody synced can be
		// trusted to have them. Catch-up reads them from the source.
		h.log.Warn("watch: notify skipped revisions; catching all watchers up from the source", "from", h.rev+1, "rev", rev)
		demoted = h.demoteAllLocked(h.rev + 1)
	}
	h.rev = rev

	// Gather each watcher's events of this revision, and the watchers by
	// stream, so that each stream's queue is locked (and its goroutine
	// woken) once per revision rather than once per watcher.
	touched := h.touched[:0]
	for _, ev := range events {
		if ev == nil || ev.Kv == nil {
			continue
		}
		h.synced.match(ev.Kv.Key, func(w *watcher) {
			if rev < w.minRev || w.filtered(ev) {
				return
			}
			if len(w.pending) == 0 {
				s := w.stream
				if len(s.batch) == 0 {
					touched = append(touched, s)
				}
				s.batch = append(s.batch, w)
			}
			w.pending = append(w.pending, ev)
		})
	}
	for _, s := range touched {
		fell := s.enqueueBatch(rev, events)
		for _, w := range fell {
			// No room: the watcher leaves the live path and will
			// read this revision (and what follows) from the source.
			h.synced.remove(w)
			w.minRev = rev
			h.markSlowLocked(w)
			h.fellBehind++
			demoted = true
		}
		clear(s.batch)
		s.batch = s.batch[:0]
	}
	clear(touched)
	h.touched = touched[:0]

	if len(h.deferredProgress) > 0 {
		h.flushDeferredProgressLocked()
	}
	if demoted {
		h.signal()
	}
}

// demoteAllLocked moves every synced watcher to catch-up from revision from
// (or its own later start).
func (h *Hub) demoteAllLocked(from int64) bool {
	var all []*watcher
	h.synced.all(func(w *watcher) { all = append(all, w) })
	h.synced = newWatcherGroup()
	for _, w := range all {
		w.minRev = max(w.minRev, from)
		h.markSlowLocked(w)
	}
	return len(all) > 0
}

// markSlowLocked queues a watcher that is not (or no longer) synced for
// catch-up. The caller has taken it out of the synced group.
func (h *Hub) markSlowLocked(w *watcher) {
	w.state = stateSlow
	s := w.stream
	s.slow = append(s.slow, w)
	s.slowCount++
	h.slowWatchers++
	h.slowStreams[s] = struct{}{}
}

// requeueLocked puts a watcher back in its stream's catch-up queue after a
// catch-up step that did not finish it.
func (h *Hub) requeueLocked(w *watcher) {
	w.state = stateSlow
	w.stream.slow = append(w.stream.slow, w)
}

// promoteLocked moves a caught-up watcher to the live path.
func (h *Hub) promoteLocked(w *watcher) {
	w.state = stateSynced
	h.synced.add(w)
	h.leaveSlowLocked(w.stream)
}

func (h *Hub) leaveSlowLocked(s *Stream) {
	s.slowCount--
	h.slowWatchers--
	if s.slowCount == 0 {
		delete(h.slowStreams, s)
		s.slow = nil
		if _, ok := h.deferredProgress[s]; ok {
			h.flushDeferredProgressLocked()
		}
	}
}

// removeWatcherLocked takes w out of every hub structure.
func (h *Hub) removeWatcherLocked(w *watcher) {
	s := w.stream
	switch w.state {
	case stateSynced:
		h.synced.remove(w)
	case stateSlow, stateFetching:
		// A slow watcher stays in s.slow until catch-up pops it and
		// sees it canceled.
		h.leaveSlowLocked(s)
	case stateCanceled:
		return
	}
	w.state = stateCanceled
	clear(w.pending)
	w.pending = nil
	delete(s.watchers, w.id)
	if w.progressNotify {
		s.progressWatchers--
	}
	h.watchers--
}

// progressReadyLocked reports whether every watcher of s is synced and at
// or past its start revision, so that a progress reply at h.rev promises
// nothing that is not already queued (etcd's rule).
func (h *Hub) progressReadyLocked(s *Stream) bool {
	if s.slowCount > 0 {
		return false
	}
	for _, w := range s.watchers {
		if h.rev < w.startRev {
			return false
		}
	}
	return true
}

// flushDeferredProgressLocked answers the progress requests that were
// waiting for their stream to be synced.
func (h *Hub) flushDeferredProgressLocked() {
	for s := range h.deferredProgress {
		if h.progressReadyLocked(s) {
			delete(h.deferredProgress, s)
			s.enqueueControl(Response{WatchID: ProgressWatchID, Revision: h.rev}, nil, false)
		}
	}
}

// signal wakes the catch-up loop; never blocks.
func (h *Hub) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Stats is a snapshot of the hub's load, for metrics.
type Stats struct {
	// Revision is the last revision notified.
	Revision int64
	Streams  int
	Watchers int
	// SlowWatchers are being caught up from the source (etcd's
	// slow_watcher_total).
	SlowWatchers int
	// BufferedEvents are queued on streams, not yet received by their
	// consumers (etcd's pending_events_total, but bounded).
	BufferedEvents int64
	// FellBehind counts the times a synced watcher found its stream full
	// and moved to catch-up.
	FellBehind int64
}

// Stats returns current counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{
		Revision:       h.rev,
		Streams:        len(h.streams),
		Watchers:       h.watchers,
		SlowWatchers:   h.slowWatchers,
		BufferedEvents: h.bufferedEvents.Load(),
		FellBehind:     h.fellBehind,
	}
}
