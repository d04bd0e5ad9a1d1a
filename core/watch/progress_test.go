package watch

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// progressOf returns the per-watcher progress notifications for id.
func progressOf(rs []Response, id int64) []Response {
	var out []Response
	for _, r := range rs {
		if r.WatchID == id && r.IsProgressNotify() {
			out = append(out, r)
		}
	}
	return out
}

// TestProgressNotify runs the progress ticker on a fake clock: a watcher
// that asked for progress_notify gets an empty response with the current
// revision on each tick (interval plus up to 10% jitter) in which it
// received no events; watchers that did not ask get none.
func TestProgressNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 10 * time.Minute // etcd's default
		h, _, wr := newTestHub(t, nil)
		if h.cfg.ProgressNotifyInterval != interval {
			t.Fatalf("default progress interval %v, want %v", h.cfg.ProgressNotifyInterval, interval)
		}
		s, rec := newTestStream(t, h)
		busy := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("busy"), ProgressNotify: true})
		idle := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("idle"), ProgressNotify: true})
		plain := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("idle")})
		future := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("idle"), ProgressNotify: true, StartRevision: 100})

		// Just before the first possible tick: nothing.
		wr.write(put("busy", "1"))
		time.Sleep(interval - time.Second)
		synctest.Wait()
		if rs := rec.snapshot(); len(progressOf(rs, idle)) != 0 {
			t.Fatalf("progress before the interval: %s", describe(rs))
		}
		// Past the first tick (interval plus at most 10% jitter): the
		// idle watcher reports revision 1; the busy one had an event.
		time.Sleep(interval/10 + 2*time.Second)
		synctest.Wait()
		rs := rec.snapshot()
		if p := progressOf(rs, idle); len(p) != 1 || p[0].Revision != 1 {
			t.Fatalf("idle watcher after one tick: %s", describe(p))
		}
		if p := progressOf(rs, busy); len(p) != 0 {
			t.Fatalf("busy watcher got progress after receiving an event: %s", describe(p))
		}
		if len(progressOf(rs, plain)) != 0 || len(progressOf(rs, future)) != 0 {
			t.Fatalf("progress for a watcher that did not ask, or before its start revision: %s", describe(rs))
		}

		// Another interval with no events for anyone: both report,
		// at the current revision.
		wr.write(put("other", "x"))
		time.Sleep(interval + interval/10 + time.Second)
		synctest.Wait()
		rs = rec.snapshot()
		if p := progressOf(rs, idle); len(p) != 2 || p[1].Revision != 2 {
			t.Fatalf("idle watcher after two ticks: %s", describe(p))
		}
		if p := progressOf(rs, busy); len(p) != 1 || p[0].Revision != 2 {
			t.Fatalf("busy watcher after an idle tick: %s", describe(p))
		}
		if len(progressOf(rs, plain)) != 0 || len(progressOf(rs, future)) != 0 {
			t.Fatalf("progress for a watcher that did not ask, or before its start revision: %s", describe(rs))
		}
	})
}

// TestProgressNotifySkipsStalledStream: progress notifications do not pile
// up on a stream nobody reads.
func TestProgressNotifySkipsStalledStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, _ := newTestHub(t, func(c *Config) { c.ProgressNotifyInterval = time.Second })
		s, err := h.NewStream()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), ProgressNotify: true})
		time.Sleep(time.Hour)
		synctest.Wait()
		s.mu.Lock()
		queued := len(s.queue) - s.head
		s.mu.Unlock()
		// The created reply is in the pump's hands; 3600 ticks queued
		// nothing more.
		if queued > 1 {
			t.Fatalf("%d responses queued after an hour of ticks", queued)
		}
		rec := record(s)
		synctest.Wait()
		rs := rec.snapshot()
		if len(rs) != 2 || !rs[0].Created || len(progressOf(rs, id)) != 1 {
			t.Fatalf("after reading again: %s, want the created reply and one progress", describe(rs))
		}
	})
}

// TestProgressRequest: a stream-wide progress request is answered with
// watch id -1 at the hub's revision at once when every watcher is synced,
// and only once they are otherwise, after all their events up to it.
func TestProgressRequest(t *testing.T) {
	h, store, wr := newTestHub(t, func(c *Config) { c.StreamBufferEvents = 8 })

	// No watchers: answered at once.
	empty, emptyRec := newTestStream(t, h)
	wr.write(put("k", "0"))
	if err := empty.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := emptyRec.waitProgress(t, 1)
	if len(rs) != 1 || rs[0].WatchID != -1 || rs[0].Revision != 1 {
		t.Fatalf("progress on an empty stream: %s", describe(rs))
	}

	// A watcher that falls behind: the reply waits for it.
	s, err := h.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k")})
	for i := range 100 {
		wr.write(put("k", string(rune('a'+i%26))))
	}
	if st := h.Stats(); st.SlowWatchers != 1 {
		t.Fatalf("the unread watcher is not slow: %+v", st)
	}
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	last := wr.write(put("k", "last"))
	rec := record(s)
	rs = rec.waitProgress(t, last)
	// Every event up to the reported revision precedes the reply.
	at := -1
	for i, r := range rs {
		if r.WatchID == ProgressWatchID {
			at = i
			break
		}
	}
	progressRev := rs[at].Revision
	before := eventsOf(rs[:at], id)
	sameEvents(t, "events before the progress reply", before, store.expected([]byte("k"), nil, 2)[:len(before)])
	if n := len(before); n == 0 || before[n-1].Kv.ModRevision != progressRev {
		t.Fatalf("progress at %d but events before it end at %s", progressRev, evString(before[max(0, n-1):]))
	}
	for _, ev := range eventsOf(rs[at:], id) {
		if ev.Kv.ModRevision <= progressRev {
			t.Fatalf("event at %d after a progress reply at %d", ev.Kv.ModRevision, progressRev)
		}
	}
}

// TestControlBackpressure: client-initiated control replies are bounded;
// Watch waits for the consumer (or its context) beyond the bound.
func TestControlBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, _ := newTestHub(t, func(c *Config) { c.MaxPendingControl = 2 })
		s, err := h.NewStream()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("a")})
		mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("b")})

		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := s.Watch(ctx, &pb.WatchCreateRequest{Key: []byte("c")})
			errc <- err
		}()
		synctest.Wait()
		select {
		case err := <-errc:
			t.Fatalf("third watch returned %v while two replies are unread", err)
		default:
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled watch: %v", err)
		}

		go func() {
			_, err := s.Watch(t.Context(), &pb.WatchCreateRequest{Key: []byte("d")})
			errc <- err
		}()
		synctest.Wait()
		rec := record(s) // the consumer reads: room again
		if err := <-errc; err != nil {
			t.Fatalf("watch after the consumer read: %v", err)
		}
		rs := rec.waitFor(t, "three created", func(rs []Response) bool { return len(rs) == 3 })
		if rs[2].WatchID != 2 || !rs[2].Created {
			t.Fatalf("responses: %s", describe(rs))
		}
	})
}
