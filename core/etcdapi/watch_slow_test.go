package etcdapi_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/core/server"
	"github.com/concordkv/concord/core/watch"
)

// stalledWatch opens a raw Watch stream on cli's connection with one
// watcher of prefix from revision start and does not read it: clientv3
// cannot be made to stop reading (it buffers without bound on the client),
// a raw stream can, so that gRPC flow control pushes back on the server.
// It returns once the member's hub has the watcher.
func stalledWatch(t testing.TB, cli *clientv3.Client, srv *server.Server, prefix string, start int64) pb.Watch_WatchClient {
	t.Helper()
	before := srv.WatchStats().Watchers
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	end := []byte(prefix)
	end[len(end)-1]++
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte(prefix), RangeEnd: end, StartRevision: start,
	}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(watchWait)
	for srv.WatchStats().Watchers == before {
		if time.Now().After(deadline) {
			t.Fatal("the stalled watcher never reached the hub")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ws
}

// writeMany puts n keys under prefix with 1 KiB values from 32 writers
// over four clients, and returns each put's latency.
func writeMany(t testing.TB, c *agenttest.Cluster, prefix string, n int) []time.Duration {
	t.Helper()
	clis := []*clientv3.Client{c.Client(), c.Client(), c.Client(), c.Client()}
	val := strings.Repeat("x", 1024)
	var next atomic.Int64
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	for w := range 32 {
		cli := clis[w%len(clis)]
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				began := time.Now()
				if _, err := cli.Put(context.Background(), fmt.Sprintf("%s%05d", prefix, i), val); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				lat[i] = time.Since(began)
			}
		})
	}
	wg.Wait()
	return lat
}

func percentile(lat []time.Duration, p float64) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

// sampleBuffered polls the hub's buffered-event count until stop is closed
// and returns the largest value seen.
func sampleBuffered(srv *server.Server, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, srv.WatchStats().BufferedEvents)
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// slowWrites is how many writes go through while a watcher stalls.
func slowWrites() int {
	if raceEnabled || testing.Short() {
		// Enough to stall it: the hub buffers 1,024 and gRPC about
		// a hundred more.
		return 2000
	}
	return 10000
}

// TestWatchStalledConsumer: one watcher never reads while 10,000 writes go
// through. The writes complete; the events buffered for it on the server
// never exceed the hub's per-stream bound; and once it reads, it gets
// every revision exactly once, in order.
func TestWatchStalledConsumer(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	srv := c.Members[0].Agent.Server()
	cli := c.Client()
	start := currentRev(t, cli) + 1
	ws := stalledWatch(t, cli, srv, "slow/", start)

	stop := make(chan struct{})
	peak := sampleBuffered(srv, stop)
	n := slowWrites()
	lat := writeMany(t, c, "slow/", n)
	close(stop)
	if t.Failed() {
		return
	}
	t.Logf("%d writes with a stalled watcher: put latency p50 %v p99 %v", n, percentile(lat, 0.5), percentile(lat, 0.99))

	st := srv.WatchStats()
	bound := int64(watch.DefaultConfig().StreamBufferEvents)
	if p := <-peak; p > bound {
		t.Fatalf("up to %d events buffered for the stalled watcher, bound %d", p, bound)
	}
	if st.FellBehind == 0 || st.SlowWatchers != 1 {
		t.Fatalf("the watcher never fell behind (stats %+v): the test did not stall it", st)
	}

	// Read again: created, then every revision from start, in order.
	if r, err := ws.Recv(); err != nil || !r.Created {
		t.Fatalf("first response %v (%v), want created", r, err)
	}
	want := start
	for want < start+int64(n) {
		r, err := ws.Recv()
		if err != nil {
			t.Fatalf("after revision %d: %v", want-1, err)
		}
		if r.Canceled {
			t.Fatalf("watch cancelled at revision %d: %v", want, r)
		}
		for _, e := range r.Events {
			if e.Kv.ModRevision != want {
				t.Fatalf("event at revision %d, want %d", e.Kv.ModRevision, want)
			}
			want++
		}
	}
	deadline := time.Now().Add(watchWait)
	for srv.WatchStats().SlowWatchers != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not get back to live events: %+v", srv.WatchStats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And it is live again.
	rev := mustPut(t, cli, "slow/live", "x")
	r, err := ws.Recv()
	if err != nil || len(r.Events) != 1 || r.Events[0].Kv.ModRevision != rev {
		t.Fatalf("live event after catching up: %v (%v), want revision %d", r, err, rev)
	}
}

// TestWatchStalledConsumerCompacted: when the history a stalled watcher
// still needs is compacted before it reads, it gets the events that were
// already on their way, with no gap, and then a cancel carrying the
// compact revision.
func TestWatchStalledConsumerCompacted(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	srv := c.Members[0].Agent.Server()
	cli := c.Client()
	start := currentRev(t, cli) + 1
	ws := stalledWatch(t, cli, srv, "slowc/", start)
	n := slowWrites()
	writeMany(t, c, "slowc/", n)
	if t.Failed() {
		return
	}
	if srv.WatchStats().FellBehind == 0 {
		t.Fatal("the watcher never fell behind: the test did not stall it")
	}
	last := currentRev(t, cli)
	if _, err := cli.Compact(t.Context(), last); err != nil {
		t.Fatal(err)
	}

	if r, err := ws.Recv(); err != nil || !r.Created {
		t.Fatalf("first response %v (%v), want created", r, err)
	}
	want := start
	for {
		r, err := ws.Recv()
		if err != nil {
			t.Fatalf("after revision %d: %v", want-1, err)
		}
		for _, e := range r.Events {
			if e.Kv.ModRevision != want {
				t.Fatalf("event at revision %d, want %d", e.Kv.ModRevision, want)
			}
			want++
		}
		if r.Canceled {
			if r.CompactRevision != last {
				t.Fatalf("cancel %v, want compact_revision %d", r, last)
			}
			t.Logf("got revisions %d..%d, then the compaction cancel at %d", start, want-1, last)
			return
		}
		if want > last {
			t.Logf("got every revision before noticing the compaction")
			return
		}
	}
}
