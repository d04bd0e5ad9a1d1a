package watch

import (
	"fmt"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func (s *Stream) bufferedEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buffered
}

// writeInBackground runs n writes of key prefix/(i%100) on the writer
// goroutine, calling check after each Notify, and fails the test if they do
// not all complete within waitTimeout: Notify must never wait for a
// consumer.
func writeInBackground(t *testing.T, wr writer, prefix string, n int, check func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			wr.write(put(fmt.Sprintf("%s%02d", prefix, i%100), fmt.Sprint(i)))
			check()
		}
	}()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("writes did not complete: Notify is blocked behind a stalled consumer")
	}
}

// TestStalledConsumer: a stream nobody reads while 10,000 revisions go
// through. Notify never blocks, the stalled stream's queue stays within its
// bound, another stream keeps receiving everything at once, and once the
// consumer reads again it gets every event in order.
func TestStalledConsumer(t *testing.T) {
	const bound = 256
	const writes = 10000
	h, store, wr := newTestHub(t, func(c *Config) { c.StreamBufferEvents = bound })

	stalled, err := h.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stalled.Close)
	prefixID := mustWatch(t, stalled, &pb.WatchCreateRequest{Key: []byte("k/"), RangeEnd: prefixEnd("k/")})
	keyID := mustWatch(t, stalled, &pb.WatchCreateRequest{Key: []byte("k/07"), PrevKv: true})

	healthy, healthyRec := newTestStream(t, h)
	healthyID := mustWatch(t, healthy, &pb.WatchCreateRequest{Key: []byte("k/"), RangeEnd: prefixEnd("k/")})

	maxBuffered := 0
	writeInBackground(t, wr, "k/", writes, func() {
		maxBuffered = max(maxBuffered, stalled.bufferedEvents())
	})
	if maxBuffered > bound {
		t.Fatalf("stalled stream buffered up to %d events, bound %d", maxBuffered, bound)
	}
	if maxBuffered == 0 {
		t.Fatal("stalled stream never buffered anything: the test is broken")
	}
	// The healthy stream is not held back by the stalled one.
	rs := healthyRec.waitEvents(t, healthyID, writes)
	sameEvents(t, "healthy stream", eventsOf(rs, healthyID), store.expected([]byte("k/"), prefixEnd("k/"), 1))
	st := h.Stats()
	if st.SlowWatchers != 2 || st.BufferedEvents > bound {
		t.Fatalf("while stalled: %+v, want the 2 stalled watchers slow and at most %d events buffered", st, bound)
	}
	t.Logf("while stalled: max buffered %d, %+v", maxBuffered, st)

	rec := record(stalled)
	rs = rec.waitEvents(t, prefixID, writes)
	sameEvents(t, "resumed prefix watcher", eventsOf(rs, prefixID), store.expected([]byte("k/"), prefixEnd("k/"), 1))
	rs = rec.waitEvents(t, keyID, writes/100)
	evs := eventsOf(rs, keyID)
	sameEvents(t, "resumed key watcher", evs, store.expected([]byte("k/07"), nil, 1))
	for i, ev := range evs[1:] {
		if ev.PrevKv == nil || ev.PrevKv.ModRevision != evs[i].Kv.ModRevision {
			t.Fatalf("resumed key watcher: event %d prev_kv %v, want the previous event's kv", i+1, ev.PrevKv)
		}
	}
	if err := stalled.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec.waitProgress(t, store.Rev())
	if st := h.Stats(); st.SlowWatchers != 0 {
		t.Fatalf("after catching up: %+v", st)
	}
}

// TestStalledConsumerOvertakenByCompaction: the history a stalled watcher
// still needs is compacted. Once it reads again it gets a gap-free prefix of
// its events and then a compaction cancel.
func TestStalledConsumerOvertakenByCompaction(t *testing.T) {
	const bound = 64
	h, store, wr := newTestHub(t, func(c *Config) {
		c.StreamBufferEvents = bound
		c.CatchUpRetryInterval = 10 * time.Millisecond
	})
	stalled, err := h.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stalled.Close)
	id := mustWatch(t, stalled, &pb.WatchCreateRequest{Key: []byte("k/"), RangeEnd: prefixEnd("k/")})
	other := mustWatch(t, stalled, &pb.WatchCreateRequest{Key: []byte("x")})
	writeInBackground(t, wr, "k/", 2000, func() {})
	all := store.expected([]byte("k/"), prefixEnd("k/"), 1)
	store.compactTo(1500)

	rec := record(stalled)
	rs := rec.waitFor(t, "compaction cancel", func(rs []Response) bool {
		for _, r := range rs {
			if r.WatchID == id && r.CompactRevision != 0 {
				return true
			}
		}
		return false
	})
	got := eventsOf(rs, id)
	if len(got) == 0 || len(got) >= 1500 {
		t.Fatalf("got %d events before the cancel, want some, all below the compaction", len(got))
	}
	sameEvents(t, "before compaction", got, all[:len(got)])
	last := rs[len(rs)-1]
	if last.WatchID != id || !last.Canceled || last.CompactRevision != 1500 {
		t.Fatalf("last response %+v, want the compaction cancel with compact revision 1500", last)
	}
	// The other watcher on the stream (synced, nothing to send) lives on.
	if st := h.Stats(); st.Watchers != 1 || st.SlowWatchers != 0 {
		t.Fatalf("after the cancel: %+v, want 1 watcher", st)
	}
	wr.write(put("x", "1"))
	rec.waitEvents(t, other, 1)
}

// TestTenThousandWatchersOnOnePrefix: every one of 10,000 watchers of one
// prefix receives every event, spread over 100 streams and all on one
// stream (where the bounded queue forces most of them through catch-up).
func TestTenThousandWatchersOnOnePrefix(t *testing.T) {
	const watchers = 10000
	events := 10
	if testing.Short() {
		events = 3
	}
	for _, streams := range []int{100, 1} {
		t.Run(fmt.Sprintf("streams=%d", streams), func(t *testing.T) {
			h, store, wr := newTestHub(t, nil)
			type sw struct {
				s   *Stream
				rec *recorder
				ids []int64
			}
			all := make([]*sw, streams)
			for i := range all {
				s, rec := newTestStream(t, h)
				all[i] = &sw{s: s, rec: rec}
				for range watchers / streams {
					all[i].ids = append(all[i].ids, mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("svc/"), RangeEnd: prefixEnd("svc/")}))
				}
			}
			if st := h.Stats(); st.Watchers != watchers {
				t.Fatalf("stats: %+v", st)
			}
			began := time.Now()
			var last int64
			for i := range events {
				last = wr.write(put(fmt.Sprintf("svc/%d", i%7), fmt.Sprint(i)))
			}
			want := store.expected([]byte("svc/"), prefixEnd("svc/"), 1)
			var wg sync.WaitGroup
			for _, x := range all {
				wg.Go(func() {
					if err := x.s.RequestProgress(t.Context()); err != nil {
						t.Error(err)
						return
					}
					rs := x.rec.waitProgress(t, last)
					byID := make(map[int64][]*mvccpb.Event)
					for _, r := range rs {
						byID[r.WatchID] = append(byID[r.WatchID], r.Events...)
					}
					for _, id := range x.ids {
						sameEvents(t, fmt.Sprintf("watcher %d", id), byID[id], want)
					}
				})
			}
			wg.Wait()
			t.Logf("events delivered and checked in %v; %+v", time.Since(began), h.Stats())
		})
	}
}
