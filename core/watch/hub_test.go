package watch

import (
	"errors"
	"log/slog"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func newTestHub(t testing.TB, adjust func(*Config)) (*Hub, *memStore, writer) {
	t.Helper()
	store := newMemStore()
	cfg := DefaultConfig()
	cfg.Source = store
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if adjust != nil {
		adjust(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("new hub: %v", err)
	}
	t.Cleanup(h.Close)
	return h, store, writer{store: store, hub: h}
}

func newTestStream(t testing.TB, h *Hub) (*Stream, *recorder) {
	t.Helper()
	s, err := h.NewStream()
	if err != nil {
		t.Fatalf("new stream: %v", err)
	}
	t.Cleanup(s.Close)
	return s, record(s)
}

func mustWatch(t testing.TB, s *Stream, req *pb.WatchCreateRequest) int64 {
	t.Helper()
	id, err := s.Watch(t.Context(), req)
	if err != nil {
		t.Fatalf("watch %q: %v", req.Key, err)
	}
	return id
}

// prefixEnd is clientv3's GetPrefixRangeEnd.
func prefixEnd(p string) []byte {
	end := []byte(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

func TestLiveEventsSingleKeyPrefixAndFromKey(t *testing.T) {
	h, store, wr := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	single := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("a/1")})
	prefix := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("a/"), RangeEnd: prefixEnd("a/")})
	fromKey := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte{0}})
	all := mustWatch(t, s, &pb.WatchCreateRequest{Key: nil, RangeEnd: []byte{0}})
	if single != 0 || prefix != 1 || fromKey != 2 || all != 3 {
		t.Fatalf("auto ids = %d %d %d %d, want 0 1 2 3", single, prefix, fromKey, all)
	}
	wr.write(put("a/1", "x"))
	wr.write(put("a/2", "y"), put("c", "z")) // one txn, one revision
	wr.write(del("a/1"))
	last := wr.write(put("b", "w"))
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := rec.waitProgress(t, last)

	for _, c := range []struct {
		id       int64
		key, end []byte
	}{
		{single, []byte("a/1"), nil},
		{prefix, []byte("a/"), prefixEnd("a/")},
		{fromKey, []byte("b"), []byte{0}},
		{all, []byte{0}, []byte{0}},
	} {
		sameEvents(t, string(c.key), eventsOf(rs, c.id), store.expected(c.key, c.end, 1))
	}
	// Created replies come first, in order, each with the revision at creation.
	for i := range 4 {
		if !rs[i].Created || rs[i].WatchID != int64(i) || rs[i].Canceled {
			t.Fatalf("response %d = %+v, want created for watch %d", i, rs[i], i)
		}
	}
	// The txn reaches the all-keys watcher as one response of two events.
	for _, r := range rs {
		if r.WatchID == all && len(r.Events) > 0 && r.Events[0].Kv.ModRevision == 2 {
			if len(r.Events) != 2 || r.Revision != 2 {
				t.Fatalf("txn response = %d events at header rev %d, want 2 at 2", len(r.Events), r.Revision)
			}
		}
	}
}

func TestFilters(t *testing.T) {
	h, store, wr := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	noPut := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	noDel := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NODELETE}})
	both := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT, pb.WatchCreateRequest_NODELETE}})
	wr.write(put("k", "1"))
	wr.write(del("k"))
	wr.write(put("k", "2"))
	// A historical watcher goes through catch-up, which filters too.
	histNoPut := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 1, Filters: []pb.WatchCreateRequest_FilterType{pb.WatchCreateRequest_NOPUT}})
	last := wr.write(del("k"))
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := rec.waitProgress(t, last)

	var puts, dels []*mvccpb.Event
	for _, ev := range store.expected([]byte("k"), nil, 1) {
		if ev.Type == mvccpb.Event_PUT {
			puts = append(puts, ev)
		} else {
			dels = append(dels, ev)
		}
	}
	sameEvents(t, "NOPUT", eventsOf(rs, noPut), dels)
	sameEvents(t, "NODELETE", eventsOf(rs, noDel), puts)
	sameEvents(t, "NOPUT+NODELETE", eventsOf(rs, both), nil)
	sameEvents(t, "historical NOPUT", eventsOf(rs, histNoPut), dels)
	for _, r := range rs {
		if r.WatchID >= 0 && !r.Created && !r.Canceled && len(r.Events) == 0 && r.WatchID != ProgressWatchID {
			t.Fatalf("empty response for a filtered watcher: %+v", r)
		}
	}
}

func TestPrevKV(t *testing.T) {
	h, _, wr := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	with := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), PrevKv: true})
	without := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k")})
	wr.write(put("k", "v1"))
	wr.write(put("k", "v2"))
	wr.write(del("k"))
	last := wr.write(put("k", "v3"))
	hist := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), PrevKv: true, StartRevision: 2})
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := rec.waitProgress(t, last)

	prevs := func(evs []*mvccpb.Event) []string {
		var out []string
		for _, ev := range evs {
			if ev.PrevKv == nil {
				out = append(out, "-")
			} else {
				out = append(out, string(ev.PrevKv.Value))
			}
		}
		return out
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s prev values = %v, want %v", name, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s prev values = %v, want %v", name, got, want)
			}
		}
	}
	// A create has no prev_kv; a put after a delete is a create again.
	check("live", prevs(eventsOf(rs, with)), []string{"-", "v1", "v2", "-"})
	check("historical", prevs(eventsOf(rs, hist)), []string{"v1", "v2", "-"})
	check("without prev_kv", prevs(eventsOf(rs, without)), []string{"-", "-", "-", "-"})
	// The shared events were not modified.
	for _, ev := range eventsOf(rs, without) {
		if ev.PrevKv != nil {
			t.Fatal("prev_kv leaked to a watcher that did not ask")
		}
	}
}

func TestClientWatchIDsAndDuplicate(t *testing.T) {
	h, _, _ := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	if id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("a"), WatchId: 1}); id != 1 {
		t.Fatalf("client id 1 became %d", id)
	}
	// Auto ids count from 0 and skip ids in use.
	if id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("a")}); id != 0 {
		t.Fatalf("first auto id = %d, want 0", id)
	}
	if id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("a"), WatchId: -1}); id != 2 {
		t.Fatalf("second auto id = %d, want 2 (1 is taken)", id)
	}
	_, err := s.Watch(t.Context(), &pb.WatchCreateRequest{Key: []byte("b"), WatchId: 1})
	if !errors.Is(err, ErrWatcherDuplicateID) {
		t.Fatalf("duplicate id: err = %v, want ErrWatcherDuplicateID", err)
	}
	_, err = s.Watch(t.Context(), &pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")})
	if !errors.Is(err, ErrEmptyWatcherRange) {
		t.Fatalf("range end before key: err = %v, want ErrEmptyWatcherRange", err)
	}
	_, err = s.Watch(t.Context(), &pb.WatchCreateRequest{Key: []byte("b"), StartRevision: -1})
	if !errors.Is(err, ErrNegativeStartRevision) {
		t.Fatalf("negative start: err = %v, want ErrNegativeStartRevision", err)
	}
	rs := rec.waitFor(t, "six replies", func(rs []Response) bool { return len(rs) >= 6 })
	wantReasons := []string{
		"mvcc: duplicate watch ID provided on the WatchStream",
		"mvcc: watcher range is empty",
		"etcdserver: mvcc: required revision has been compacted",
	}
	for i, reason := range wantReasons {
		r := rs[3+i]
		if !r.Created || !r.Canceled || r.WatchID != -1 || r.CancelReason != reason {
			t.Fatalf("failed create %d replied %+v, want created+canceled id -1 reason %q", i, r, reason)
		}
	}
	// A second stream has its own ids.
	s2, _ := newTestStream(t, h)
	if id := mustWatch(t, s2, &pb.WatchCreateRequest{Key: []byte("a"), WatchId: 1}); id != 1 {
		t.Fatalf("id 1 on another stream became %d", id)
	}
}

func TestCancel(t *testing.T) {
	h, _, wr := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k")})
	other := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k")})
	wr.write(put("k", "1"))
	if err := s.Cancel(t.Context(), id); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if err := s.Cancel(t.Context(), id); !errors.Is(err, ErrWatcherNotExist) {
		t.Fatalf("second cancel: err = %v, want ErrWatcherNotExist", err)
	}
	last := wr.write(put("k", "2"))
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := rec.waitProgress(t, last)
	if n := len(eventsOf(rs, id)); n != 1 {
		t.Fatalf("canceled watcher got %d events, want 1 (before cancel)", n)
	}
	if n := len(eventsOf(rs, other)); n != 2 {
		t.Fatalf("other watcher got %d events, want 2", n)
	}
	var canceled int
	for _, r := range rs {
		if r.WatchID == id && r.Canceled {
			canceled++
			if r.CompactRevision != 0 || r.Created {
				t.Fatalf("cancel reply %+v", r)
			}
		}
	}
	if canceled != 1 {
		t.Fatalf("%d cancel replies, want 1", canceled)
	}
	if st := h.Stats(); st.Watchers != 1 {
		t.Fatalf("stats after cancel: %+v", st)
	}
}

func TestCompactedStartRevisionIsCanceled(t *testing.T) {
	h, store, wr := newTestHub(t, nil)
	for i := range 10 {
		wr.write(put("k", string(rune('a'+i))))
	}
	store.compactTo(5)
	s, rec := newTestStream(t, h)
	id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3})
	ok := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 6})
	rs := rec.waitFor(t, "compaction cancel", func(rs []Response) bool {
		for _, r := range rs {
			if r.WatchID == id && r.CompactRevision != 0 {
				return true
			}
		}
		return false
	})
	var created, cancel int = -1, -1
	for i, r := range rs {
		if r.WatchID == id && r.Created {
			created = i
		}
		if r.WatchID == id && r.CompactRevision != 0 {
			cancel = i
			if !r.Canceled || r.CompactRevision != 5 || len(r.Events) != 0 {
				t.Fatalf("compaction reply = %+v, want canceled with compact revision 5", r)
			}
		}
	}
	if created < 0 || created > cancel {
		t.Fatalf("created reply at %d, cancel at %d: created must come first", created, cancel)
	}
	rs = rec.waitFor(t, "history from 6", func(rs []Response) bool { return len(eventsOf(rs, ok)) == 5 })
	sameEvents(t, "from 6", eventsOf(rs, ok), store.expected([]byte("k"), nil, 6))
	if st := h.Stats(); st.Watchers != 1 || st.SlowWatchers != 0 {
		t.Fatalf("stats = %+v, want 1 watcher, none slow", st)
	}
}

func TestFutureStartRevision(t *testing.T) {
	h, store, wr := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), StartRevision: 3})
	wr.write(put("k", "1"))
	// Not past its start: a progress request must wait (etcd's rule),
	// or the client would resume below the start it asked for.
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	wr.write(put("k", "2"))
	wr.write(put("k", "3"))
	last := wr.write(put("k", "4"))
	rec.waitProgress(t, 3)
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := rec.waitProgress(t, last)
	sameEvents(t, "from 3", eventsOf(rs, id), store.expected([]byte("k"), nil, 3))
	for _, r := range rs {
		if r.WatchID == ProgressWatchID && r.Revision < 3 {
			t.Fatalf("progress at %d before the watcher's start revision 3", r.Revision)
		}
	}
}

func TestStreamCloseAndHubClose(t *testing.T) {
	h, _, wr := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k")})
	wr.write(put("k", "1"))
	s.Close()
	<-rec.done // Chan is closed
	if _, err := s.Watch(t.Context(), &pb.WatchCreateRequest{Key: []byte("k")}); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("watch on closed stream: %v", err)
	}
	if st := h.Stats(); st.Watchers != 0 || st.Streams != 0 || st.BufferedEvents != 0 {
		t.Fatalf("stats after stream close: %+v", st)
	}
	s2, rec2 := newTestStream(t, h)
	mustWatch(t, s2, &pb.WatchCreateRequest{Key: []byte("k")})
	h.Close()
	<-rec2.done
	if _, err := h.NewStream(); !errors.Is(err, ErrHubClosed) {
		t.Fatalf("new stream on closed hub: %v", err)
	}
	wr.write(put("k", "2")) // Notify after Close is a no-op
}

func TestNotifyGapCatchesUpFromSource(t *testing.T) {
	h, store, _ := newTestHub(t, nil)
	s, rec := newTestStream(t, h)
	id := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("k"), RangeEnd: []byte{0}})
	// Revisions 1..3 reach the store but are never notified (a snapshot
	// install); the next Notify skips ahead.
	store.write(put("k", "1"))
	store.write(put("k1", "2"))
	store.write(put("k2", "3"))
	rev, evs := store.write(put("k3", "4"))
	h.Notify(rev, evs)
	rs := rec.waitFor(t, "all four", func(rs []Response) bool { return len(eventsOf(rs, id)) >= 4 })
	sameEvents(t, "after gap", eventsOf(rs, id), store.expected([]byte("k"), []byte{0}, 1))
	// Old revisions are ignored.
	h.Notify(2, evs)
	if st := h.Stats(); st.Revision != rev {
		t.Fatalf("hub revision %d, want %d", st.Revision, rev)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Source = newMemStore()
	if err := good.Validate(); err != nil {
		t.Fatalf("default config with a source: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no source":      func(c *Config) { c.Source = nil },
		"buffer":         func(c *Config) { c.StreamBufferEvents = 0 },
		"control":        func(c *Config) { c.MaxPendingControl = 0 },
		"batch":          func(c *Config) { c.CatchUpBatchEvents = 0 },
		"watchers":       func(c *Config) { c.CatchUpWatchers = 0 },
		"retry":          func(c *Config) { c.CatchUpRetryInterval = 0 },
		"progress":       func(c *Config) { c.ProgressNotifyInterval = MinProgressNotifyInterval / 2 },
		"fragment":       func(c *Config) { c.MaxFragmentBytes = 0 },
		"logger":         func(c *Config) { c.Logger = nil },
		"compacted func": func(c *Config) { c.IsCompacted = nil },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, c)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted an invalid config", name)
		}
	}
}

func TestResponseToProto(t *testing.T) {
	r := Response{WatchID: 7, Revision: 9, CompactRevision: 3, Canceled: true, CancelReason: "x", Fragment: true,
		Events: []*mvccpb.Event{{Kv: &mvccpb.KeyValue{Key: []byte("k")}}}}
	base := &pb.ResponseHeader{ClusterId: 1, MemberId: 2, RaftTerm: 4, Revision: 100}
	p := r.ToProto(base)
	if p.Header.ClusterId != 1 || p.Header.MemberId != 2 || p.Header.RaftTerm != 4 || p.Header.Revision != 9 {
		t.Fatalf("header = %v", p.Header)
	}
	if base.Revision != 100 {
		t.Fatal("ToProto modified the base header")
	}
	if p.WatchId != 7 || !p.Canceled || p.CompactRevision != 3 || p.CancelReason != "x" || !p.Fragment || len(p.Events) != 1 {
		t.Fatalf("proto = %v", p)
	}
}
