package watch

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Stream is the hub side of one client Watch stream: many watchers sharing
// one ordered, bounded queue of responses, read from Chan. Watch, Cancel and
// RequestProgress are meant for the stream's receive loop and Chan for its
// send loop; all methods are safe for concurrent use.
type Stream struct {
	hub  *Hub
	out  chan Response // unbuffered; the pump is its only sender
	done chan struct{} // closed by Close
	// ready has a token when the queue may be non-empty.
	ready     chan struct{}
	closeOnce sync.Once
	pumpWG    sync.WaitGroup

	// Guarded by Hub.mu.
	watchers map[int64]*watcher
	nextID   int64
	// slow is the FIFO of watchers waiting for catch-up (may hold
	// canceled ones, dropped when popped); slowCount counts the stream's
	// watchers in stateSlow or stateFetching.
	slow             []*watcher
	slowCount        int
	progressWatchers int
	// batch is Notify's scratch: the stream's watchers with events in
	// the revision being notified.
	batch []*watcher

	// mu guards the outgoing queue. Lock order: Hub.mu, then Stream.mu.
	mu    sync.Mutex
	queue []queued
	head  int
	// buffered counts events queued or in the pump's hands: at most
	// Config.StreamBufferEvents, or one response's worth when that alone
	// is larger.
	buffered int
	// control counts client-initiated control responses queued or in the
	// pump's hands; controlFreed is closed (and replaced) whenever one is
	// delivered, to wake callers waiting for room.
	control      int
	controlFreed chan struct{}
	// starved: a watcher of this stream is waiting for room; the pump
	// wakes catch-up once the queue has drained to half.
	starved bool
	closed  bool
}

// queued is one entry of a stream's queue.
type queued struct {
	resp Response
	// w is the watcher an events response is for (its prev_kv and
	// fragment options apply), or the watcher a progress notification is
	// for (to clear progressQueued).
	w *watcher
	// events is the number of events counted against buffered.
	events int
	// clientControl: counted against control.
	clientControl bool
}

// NewStream opens a stream. Close it when the client stream ends.
func (h *Hub) NewStream() (*Stream, error) {
	s := &Stream{
		hub:      h,
		out:      make(chan Response),
		done:     make(chan struct{}),
		ready:    make(chan struct{}, 1),
		watchers: make(map[int64]*watcher),
	}
	s.pumpWG.Go(s.pump)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		s.Close()
		return nil, ErrHubClosed
	}
	h.streams[s] = struct{}{}
	h.mu.Unlock()
	return s, nil
}

// Chan returns the stream's responses, in the order they must be sent to
// the client. It is closed after Close.
func (s *Stream) Chan() <-chan Response { return s.out }

// Watch creates a watcher from an etcd create request and returns its id.
// The stream then carries, in order: a Created response, historical events
// from start_revision (if in the past) read from the source, and live events,
// with no gap and no duplicate. A start revision that is compacted yields a
// Created response followed by a cancel with CompactRevision set.
//
// req is not modified. key "" means "\x00"; range_end follows etcd (empty:
// the single key; "\x00": every key >= key). watch_id 0 or -1 lets the
// stream pick the smallest free id counting up from 0; any other value is
// used as given.
//
// On ErrWatcherDuplicateID, ErrEmptyWatcherRange and
// ErrNegativeStartRevision the stream also carries etcd's reply to the
// failed create (Created and Canceled, WatchID -1, the cancel reason), so
// the caller only has to forward Chan. Watch waits while
// Config.MaxPendingControl control responses are queued, until ctx is done.
func (s *Stream) Watch(ctx context.Context, req *pb.WatchCreateRequest) (int64, error) {
	h := s.hub
	key := req.GetKey()
	if len(key) == 0 {
		key = []byte{0} // etcd: "\x00" is the smallest key
	}
	end := req.GetRangeEnd()
	var werr error
	switch {
	case len(end) == 0:
		end = nil
	case len(end) == 1 && end[0] == 0:
	case bytes.Compare(key, end) >= 0:
		werr = ErrEmptyWatcherRange
	}
	if req.GetStartRevision() < 0 {
		werr = ErrNegativeStartRevision
	}
	var noPut, noDelete bool
	for _, f := range req.GetFilters() {
		switch f {
		case pb.WatchCreateRequest_NOPUT:
			noPut = true
		case pb.WatchCreateRequest_NODELETE:
			noDelete = true
		}
	}

	// Read the source before taking the hub lock: the hub never calls the
	// source under it.
	srcRev := h.src.Rev()
	if err := s.reserveControl(ctx); err != nil {
		return -1, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || s.isClosed() {
		s.releaseControl()
		return -1, ErrStreamClosed
	}
	cur := max(srcRev, h.rev)

	id := req.GetWatchId()
	if werr == nil {
		if id == 0 || id == ProgressWatchID {
			for s.watchers[s.nextID] != nil {
				s.nextID++
			}
			id = s.nextID
			s.nextID++
		} else if s.watchers[id] != nil {
			werr = ErrWatcherDuplicateID
		}
	}
	if werr != nil {
		reason := werr.Error()
		if werr == ErrNegativeStartRevision {
			reason = CompactedCancelReason
		}
		s.enqueueControl(Response{WatchID: ProgressWatchID, Revision: cur, Created: true, Canceled: true, CancelReason: reason}, nil, true)
		return -1, werr
	}

	w := &watcher{
		id:             id,
		stream:         s,
		key:            bytes.Clone(key),
		end:            bytes.Clone(end),
		single:         end == nil,
		startRev:       req.GetStartRevision(),
		noPut:          noPut,
		noDelete:       noDelete,
		prevKV:         req.GetPrevKv(),
		progressNotify: req.GetProgressNotify(),
		fragment:       req.GetFragment(),
	}
	s.watchers[id] = w
	h.watchers++
	if w.progressNotify {
		s.progressWatchers++
	}
	// The created reply goes first: every event for w is queued after it.
	s.enqueueControl(Response{WatchID: id, Revision: cur, Created: true}, nil, true)
	switch {
	case w.startRev == 0:
		// From the next revision. cur may be ahead of h.rev when the
		// applier has committed but not yet notified; Notify skips
		// those revisions for w through minRev.
		w.minRev = cur + 1
		w.state = stateSynced
		h.synced.add(w)
	case w.startRev > h.rev:
		w.minRev = w.startRev
		w.state = stateSynced
		h.synced.add(w)
	default:
		w.minRev = w.startRev
		h.markSlowLocked(w)
		h.signal()
	}
	return id, nil
}

// Cancel removes a watcher; the stream then carries a Canceled response for
// it after anything already queued for it. ErrWatcherNotExist if the id is
// not active (etcd sends nothing then). Waits for control room like Watch.
func (s *Stream) Cancel(ctx context.Context, watchID int64) error {
	h := s.hub
	srcRev := h.src.Rev()
	if err := s.reserveControl(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	w := s.watchers[watchID]
	if w == nil || h.closed || s.isClosed() {
		s.releaseControl()
		if w == nil {
			return ErrWatcherNotExist
		}
		return ErrStreamClosed
	}
	// The reply first: a progress reply the removal may release follows it.
	s.enqueueControl(Response{WatchID: watchID, Revision: max(srcRev, h.rev), Canceled: true}, nil, true)
	h.removeWatcherLocked(w)
	return nil
}

// RequestProgress asks for a progress notification for the whole stream:
// a Response with WatchID -1 and the hub's revision, queued after every
// event up to that revision. As in etcd it is only sent when all the
// stream's watchers are synced (and past their start revisions); unlike
// etcd 3.7, which then drops the request, the hub sends it as soon as they
// are. Waits for control room like Watch.
func (s *Stream) RequestProgress(ctx context.Context) error {
	h := s.hub
	if err := s.reserveControl(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || s.isClosed() {
		s.releaseControl()
		return ErrStreamClosed
	}
	if h.progressReadyLocked(s) {
		s.enqueueControl(Response{WatchID: ProgressWatchID, Revision: h.rev}, nil, true)
		return nil
	}
	// At most one deferred reply per stream: later requests are answered
	// by the same, later, reply.
	s.releaseControl()
	h.deferredProgress[s] = struct{}{}
	return nil
}

// Close cancels every watcher of the stream, drops its queue, closes Chan and
// waits for the stream's goroutine. Safe to call more than once.
func (s *Stream) Close() {
	s.closeOnce.Do(func() {
		h := s.hub
		h.mu.Lock()
		delete(h.deferredProgress, s)
		for _, w := range s.watchers {
			h.removeWatcherLocked(w)
		}
		delete(h.streams, s)
		delete(h.slowStreams, s)
		s.slow = nil
		s.mu.Lock()
		s.closed = true
		dropped := 0
		for _, q := range s.queue[s.head:] {
			dropped += q.events
		}
		s.buffered -= dropped
		h.bufferedEvents.Add(-int64(dropped))
		s.queue, s.head = nil, 0
		close(s.done)
		s.mu.Unlock()
		h.mu.Unlock()
	})
	s.pumpWG.Wait()
}

func (s *Stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// reserveControl takes one slot of Config.MaxPendingControl, waiting for
// the consumer to make room.
func (s *Stream) reserveControl(ctx context.Context) error {
	limit := s.hub.cfg.MaxPendingControl
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrStreamClosed
		}
		if s.control < limit {
			s.control++
			s.mu.Unlock()
			return nil
		}
		if s.controlFreed == nil {
			s.controlFreed = make(chan struct{})
		}
		freed := s.controlFreed
		s.mu.Unlock()
		select {
		case <-freed:
		case <-s.done:
			return ErrStreamClosed
		case <-ctx.Done():
			return fmt.Errorf("wait for room on watch stream: %w", ctx.Err())
		}
	}
}

// releaseControl returns a slot taken by reserveControl and not used.
func (s *Stream) releaseControl() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.controlFreedLocked()
}

func (s *Stream) controlFreedLocked() {
	s.control--
	if s.controlFreed != nil {
		close(s.controlFreed)
		s.controlFreed = nil
	}
}

// enqueueEvents queues an events response for w if the buffer bound allows
// and reports whether it did. On a closed stream it drops the response and
// reports true: the watcher is going away.
func (s *Stream) enqueueEvents(w *watcher, r Response) bool {
	n := len(r.Events)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	if s.buffered > 0 && s.buffered+n > s.hub.cfg.StreamBufferEvents {
		s.starved = true
		return false
	}
	s.buffered += n
	s.hub.bufferedEvents.Add(int64(n))
	s.pushLocked(queued{resp: r, w: w, events: n})
	return true
}

// enqueueBatch queues Notify's responses for the watchers in s.batch (their
// events of revision rev are in w.pending; all of events is shared rather
// than copied) under one lock, and returns the watchers that found no room.
// Caller holds Hub.mu.
func (s *Stream) enqueueBatch(rev int64, events []*mvccpb.Event) (fell []*watcher) {
	bound := s.hub.cfg.StreamBufferEvents
	s.mu.Lock()
	defer s.mu.Unlock()
	added := 0
	for _, w := range s.batch {
		evs := w.pending
		if len(evs) == len(events) {
			evs = events // the watcher takes the whole revision: share it
		} else {
			evs = slices.Clone(evs)
		}
		clear(w.pending)
		w.pending = w.pending[:0]
		if s.closed {
			continue // its watchers are being removed
		}
		n := len(evs)
		if s.buffered > 0 && s.buffered+n > bound {
			s.starved = true
			fell = append(fell, w)
			continue
		}
		s.buffered += n
		added += n
		s.queue = append(s.queue, queued{resp: Response{WatchID: w.id, Revision: rev, Events: evs}, w: w, events: n})
		w.minRev = rev + 1
		w.sentSinceTick = true
	}
	if added > 0 {
		s.hub.bufferedEvents.Add(int64(added))
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	return fell
}

// enqueueControl queues a control response, or a progress notification for
// watcher progressFor. clientControl responses use a slot taken by
// reserveControl; the others (compaction cancels, progress) are bounded by
// the number of watchers.
func (s *Stream) enqueueControl(r Response, progressFor *watcher, clientControl bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if clientControl {
			s.controlFreedLocked()
		}
		return
	}
	if progressFor != nil {
		if progressFor.progressQueued {
			return
		}
		progressFor.progressQueued = true
	}
	s.pushLocked(queued{resp: r, w: progressFor, clientControl: clientControl})
}

func (s *Stream) pushLocked(q queued) {
	s.queue = append(s.queue, q)
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// pop takes the head of the queue, if any.
func (s *Stream) pop() (queued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
		return queued{}, false
	}
	q := s.queue[s.head]
	s.queue[s.head] = queued{}
	s.head++
	if s.head >= 256 && s.head*2 >= len(s.queue) {
		// Slide the live tail down so the array does not grow forever
		// under a consumer that never lets the queue empty.
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	return q, true
}

// delivered accounts for a queue entry the consumer has received.
func (s *Stream) delivered(q queued) {
	s.mu.Lock()
	s.buffered -= q.events
	s.hub.bufferedEvents.Add(-int64(q.events))
	if q.clientControl {
		s.controlFreedLocked()
	}
	if q.w != nil && q.events == 0 {
		q.w.progressQueued = false
	}
	wake := s.starved && s.buffered <= s.hub.cfg.StreamBufferEvents/2
	if wake {
		s.starved = false
	}
	s.mu.Unlock()
	if wake {
		s.hub.signal()
	}
}

// room returns how many events catch-up may queue on s now. With
// none, it marks s starved so that the pump wakes catch-up later. Caller
// holds Hub.mu.
func (s *Stream) room() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	room := s.hub.cfg.StreamBufferEvents - s.buffered
	if s.buffered == 0 {
		room = s.hub.cfg.StreamBufferEvents
	}
	if room <= 0 {
		s.starved = true
		return 0
	}
	return room
}
