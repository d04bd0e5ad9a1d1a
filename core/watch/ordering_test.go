package watch

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// createdWatch remembers what a watcher asked for, to compute what it must
// have received.
type createdWatch struct {
	stream   int
	id       int64
	key, end []byte
	startRev int64
	noPut    bool
	noDelete bool
}

// checkStream verifies the per-watcher guarantees on one stream's
// responses: the created reply before any event, events in strictly
// increasing revisions across responses (several per response only within
// one revision ordering), and exactly the expected events.
func checkStream(t *testing.T, store *memStore, rs []Response, watches []createdWatch) {
	t.Helper()
	created := map[int64]Response{}
	lastRev := map[int64]int64{}
	for _, r := range rs {
		if r.Created {
			if _, dup := created[r.WatchID]; dup {
				t.Fatalf("two created replies for watch %d", r.WatchID)
			}
			created[r.WatchID] = r
			continue
		}
		if len(r.Events) == 0 {
			continue
		}
		if _, ok := created[r.WatchID]; !ok {
			t.Fatalf("events for watch %d before its created reply", r.WatchID)
		}
		for _, ev := range r.Events {
			if ev.Kv.ModRevision < lastRev[r.WatchID] {
				t.Fatalf("watch %d: revision %d after %d", r.WatchID, ev.Kv.ModRevision, lastRev[r.WatchID])
			}
			lastRev[r.WatchID] = ev.Kv.ModRevision
		}
		if last := r.Events[len(r.Events)-1].Kv.ModRevision; r.Revision < last {
			t.Fatalf("watch %d: header revision %d below its last event %d", r.WatchID, r.Revision, last)
		}
	}
	for _, cw := range watches {
		from := cw.startRev
		if from == 0 {
			from = created[cw.id].Revision + 1
		}
		var want []*mvccpb.Event
		for _, ev := range store.expected(cw.key, cw.end, from) {
			if cw.noPut && ev.Type == mvccpb.Event_PUT || cw.noDelete && ev.Type == mvccpb.Event_DELETE {
				continue
			}
			want = append(want, ev)
		}
		sameEvents(t, fmt.Sprintf("stream %d watch %d [%q,%q) from %d", cw.stream, cw.id, cw.key, cw.end, from), eventsOf(rs, cw.id), want)
	}
}

// TestOrderingAgainstConcurrentWriters races one writer against watcher
// creation on several streams, some read promptly, one stalled until the
// end, one paused midway, with small buffers so that watchers keep falling
// between the live path and catch-up. Every watcher must see every matching
// revision exactly once, in order, including across the switch from
// historical replay to live events.
func TestOrderingAgainstConcurrentWriters(t *testing.T) {
	revisions, watchersPerStream := 1000, 30
	if testing.Short() {
		revisions, watchersPerStream = 400, 15
	}
	h, store, wr := newTestHub(t, func(c *Config) {
		c.StreamBufferEvents = 32
		c.CatchUpBatchEvents = 8
		c.CatchUpWatchers = 16
	})
	keys := make([]string, 24)
	for i := range keys {
		keys[i] = fmt.Sprintf("k/%02d", i)
	}
	keys[22], keys[23] = "other", "z"

	const streams = 4
	ss := make([]*Stream, streams)
	for i := range ss {
		s, err := h.NewStream()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		ss[i] = s
	}
	// Stream 0 and 1 are read all along; stream 2 is read only after the
	// writer is done; stream 3 pauses between a third and the end.
	recs := make([]*recorder, streams)
	recs[0], recs[1] = record(ss[0]), record(ss[1])
	// The recorders of the stalled streams start later; their creates
	// must not wait for room meanwhile.
	began := time.Now()
	writerDone := make(chan struct{})
	third := make(chan struct{})
	go func() {
		defer close(writerDone)
		rng := rand.New(rand.NewPCG(7, 7))
		for i := 0; store.Rev() < int64(revisions); i++ {
			if store.Rev() == int64(revisions/3) {
				close(third)
			}
			n := 1 + rng.IntN(3)
			var ops []op
			used := map[string]bool{}
			for range n {
				k := keys[rng.IntN(len(keys))]
				if used[k] {
					continue
				}
				used[k] = true
				if rng.IntN(4) == 0 {
					ops = append(ops, del(k))
				} else {
					ops = append(ops, put(k, fmt.Sprint(i)))
				}
			}
			wr.write(ops...)
		}
	}()

	var mu sync.Mutex
	var watches []createdWatch
	var wg sync.WaitGroup
	for si, s := range ss {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(si), 99))
			for i := range watchersPerStream {
				if si == 3 && i == watchersPerStream/2 {
					<-third
				}
				cw := createdWatch{stream: si}
				switch rng.IntN(5) {
				case 0:
					cw.key = []byte(keys[rng.IntN(len(keys))])
				case 1:
					cw.key, cw.end = []byte("k/"), prefixEnd("k/")
				case 2:
					cw.key, cw.end = []byte("k/1"), []byte{0}
				case 3:
					cw.key, cw.end = []byte("k/05"), []byte("k/13")
				default:
					cw.key, cw.end = []byte{0}, []byte{0}
				}
				cur := store.Rev()
				switch rng.IntN(4) {
				case 0:
					cw.startRev = 0
				case 1:
					cw.startRev = min(cur+1+rng.Int64N(20), int64(revisions)) // future
				default:
					cw.startRev = 1 + rng.Int64N(cur+1) // history
				}
				cw.noPut = rng.IntN(8) == 0
				cw.noDelete = !cw.noPut && rng.IntN(8) == 0
				req := &pb.WatchCreateRequest{Key: cw.key, RangeEnd: cw.end, StartRevision: cw.startRev}
				if cw.noPut {
					req.Filters = append(req.Filters, pb.WatchCreateRequest_NOPUT)
				}
				if cw.noDelete {
					req.Filters = append(req.Filters, pb.WatchCreateRequest_NODELETE)
				}
				id, err := s.Watch(t.Context(), req)
				if err != nil {
					t.Errorf("stream %d watch: %v", si, err)
					return
				}
				cw.id = id
				if len(cw.end) == 0 {
					cw.end = nil
				}
				mu.Lock()
				watches = append(watches, cw)
				mu.Unlock()
			}
		})
	}
	// Streams 2 and 3 create more watchers than MaxPendingControl would
	// hold unread only because the default (64) is larger; start reading
	// stream 3 again after the writer passed a third.
	<-third
	recs[3] = record(ss[3])
	wg.Wait()
	<-writerDone
	recs[2] = record(ss[2])
	last := store.Rev()
	t.Logf("writer and watchers done after %v", time.Since(began))

	for si, s := range ss {
		if err := s.RequestProgress(t.Context()); err != nil {
			t.Fatal(err)
		}
		rs := recs[si].waitProgress(t, last)
		var mine []createdWatch
		for _, cw := range watches {
			if cw.stream == si {
				mine = append(mine, cw)
			}
		}
		checkStream(t, store, rs, mine)
		events := 0
		for _, r := range rs {
			events += len(r.Events)
		}
		t.Logf("stream %d: %d events in %d responses, checked after %v", si, events, len(rs), time.Since(began))
	}
	st := h.Stats()
	if st.SlowWatchers != 0 {
		t.Fatalf("slow watchers left after everyone caught up: %+v", st)
	}
	if st.FellBehind == 0 {
		t.Fatalf("no watcher ever fell behind: the test did not exercise catch-up (%+v)", st)
	}
	t.Logf("%+v", st)
}

// TestCompactionRacesCatchUp compacts history while watchers replay it and
// while some streams are stalled. Each watcher must end with either every
// matching event, or a gap-free prefix of them followed by a compaction
// cancel and nothing after.
func TestCompactionRacesCatchUp(t *testing.T) {
	revisions := 2000
	if testing.Short() {
		revisions = 500
	}
	h, store, wr := newTestHub(t, func(c *Config) {
		c.StreamBufferEvents = 16
		c.CatchUpBatchEvents = 4
		c.CatchUpRetryInterval = time.Millisecond
	})
	const streams = 3
	ss := make([]*Stream, streams)
	recs := make([]*recorder, streams)
	var watches []createdWatch
	rng := rand.New(rand.NewPCG(3, 4))
	for si := range ss {
		s, err := h.NewStream()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		ss[si] = s
		if si != 2 { // stream 2 stays stalled until the end
			recs[si] = record(s)
		}
	}
	half := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		wrng := rand.New(rand.NewPCG(5, 6))
		for store.Rev() < int64(revisions) {
			rev := wr.write(put(fmt.Sprintf("c/%d", wrng.IntN(10)), "v"))
			if rev == int64(revisions/2) {
				close(half)
			}
			if rev%100 == 0 && rev > 400 {
				store.compactTo(rev - 400)
			}
		}
	}()
	create := func(si int, from int64) {
		cw := createdWatch{stream: si, key: []byte("c/"), end: prefixEnd("c/"), startRev: from}
		if si == 1 {
			cw.key, cw.end = []byte("c/3"), nil
		}
		id, err := ss[si].Watch(t.Context(), &pb.WatchCreateRequest{Key: cw.key, RangeEnd: cw.end, StartRevision: cw.startRev})
		if err != nil {
			t.Fatal(err)
		}
		cw.id = id
		watches = append(watches, cw)
	}
	for si := range ss {
		create(si, 1)
	}
	<-half
	for si := range ss {
		for range 5 {
			cur := store.Rev()
			create(si, max(1, cur-600+rng.Int64N(600)))
		}
	}
	<-done
	last := store.Rev()
	// Replays that start above the last compaction must complete.
	for si := range ss {
		create(si, last-300)
	}
	recs[2] = record(ss[2])

	canceledSeen := 0
	for si, s := range ss {
		if err := s.RequestProgress(t.Context()); err != nil {
			t.Fatal(err)
		}
		rs := recs[si].waitProgress(t, last)
		for _, cw := range watches {
			if cw.stream != si {
				continue
			}
			want := store.expected(cw.key, cw.end, cw.startRev)
			got := eventsOf(rs, cw.id)
			canceled := false
			for i, r := range rs {
				if r.WatchID != cw.id || !r.Canceled {
					continue
				}
				if r.CompactRevision == 0 {
					t.Fatalf("watch %d canceled without compaction", cw.id)
				}
				canceled = true
				for _, later := range rs[i+1:] {
					if later.WatchID == cw.id {
						t.Fatalf("watch %d: response after its compaction cancel: %+v", cw.id, later)
					}
				}
			}
			if canceled {
				canceledSeen++
				if len(got) > len(want) {
					t.Fatalf("watch %d: more events than exist", cw.id)
				}
				want = want[:len(got)]
			}
			sameEvents(t, fmt.Sprintf("stream %d watch %d from %d (canceled %v)", si, cw.id, cw.startRev, canceled), got, want)
		}
	}
	if canceledSeen == 0 || canceledSeen == len(watches) {
		t.Fatalf("%d of %d watchers overtaken by compaction: the test must see both outcomes", canceledSeen, len(watches))
	}
	t.Logf("%d of %d watchers canceled by compaction; %+v", canceledSeen, len(watches), h.Stats())
}
