package etcdapi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/concordkv/concord/agent"
	"github.com/concordkv/concord/agent/agenttest"
)

// watchWait bounds every wait for a watch response.
const watchWait = 20 * time.Second

// steadyOptions make spontaneous elections on a loaded machine unlikely:
// these tests write through clientv3, which does not retry a write whose
// outcome a leader change left unknown, and they count events exactly.
func steadyOptions() agenttest.Options {
	return agenttest.Options{HeartbeatInterval: 100 * time.Millisecond, ElectionTimeout: 2 * time.Second}
}

// forEachWatchCluster runs fn on one member and on a three-member
// cluster through a follower, like forEachCluster, with steadyOptions.
func forEachWatchCluster(t *testing.T, fn func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client)) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			c := agenttest.Start(t, size, steadyOptions())
			member := 0
			if size > 1 {
				member = c.Follower()
			}
			fn(t, c, c.Client(member))
			c.CheckConverged()
		})
	}
}

// recvResponses reads wch until the responses carry n events in total.
// A closed channel, an error response or a timeout fails the test.
func recvResponses(t testing.TB, wch clientv3.WatchChan, n int) []clientv3.WatchResponse {
	t.Helper()
	var out []clientv3.WatchResponse
	got := 0
	timeout := time.After(watchWait)
	for got < n {
		select {
		case r, ok := <-wch:
			if !ok {
				t.Fatalf("watch channel closed after %d of %d events", got, n)
			}
			if err := r.Err(); err != nil {
				t.Fatalf("watch error after %d of %d events: %v", got, n, err)
			}
			out = append(out, r)
			got += len(r.Events)
		case <-timeout:
			t.Fatalf("timed out after %d of %d events", got, n)
		}
	}
	return out
}

func recvEvents(t testing.TB, wch clientv3.WatchChan, n int) []*clientv3.Event {
	t.Helper()
	var evs []*clientv3.Event
	for _, r := range recvResponses(t, wch, n) {
		evs = append(evs, r.Events...)
	}
	if len(evs) != n {
		t.Fatalf("got %d events, want %d: %s", len(evs), n, describe(evs))
	}
	return evs
}

// recvOne reads the next response (of any kind).
func recvOne(t testing.TB, wch clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-wch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(watchWait):
		t.Fatal("timed out waiting for a watch response")
	}
	return clientv3.WatchResponse{}
}

// firstResponse is recvOne for goroutines other than the test's.
func firstResponse(wch clientv3.WatchChan) (clientv3.WatchResponse, error) {
	select {
	case r, ok := <-wch:
		if !ok {
			return r, errors.New("watch channel closed")
		}
		return r, nil
	case <-time.After(watchWait):
		return clientv3.WatchResponse{}, errors.New("timed out waiting for a watch response")
	}
}

// describe prints events compactly, for comparisons and failures.
func describe(evs []*clientv3.Event) string {
	var parts []string
	for _, e := range evs {
		s := fmt.Sprintf("%s %s@%d", e.Type, e.Kv.Key, e.Kv.ModRevision)
		if e.Type == mvccpb.PUT {
			s += "=" + string(e.Kv.Value)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func mustPut(t testing.TB, cli *clientv3.Client, key, val string) int64 {
	t.Helper()
	resp, err := cli.Put(t.Context(), key, val)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

// putRetry puts through a cluster that may be electing a leader.
func putRetry(t testing.TB, c *agenttest.Cluster, key, val string) int64 {
	t.Helper()
	deadline := time.Now().Add(watchWait)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		resp, err := c.Client(c.Leader()).Put(ctx, key, val)
		cancel()
		if err == nil {
			return resp.Header.Revision
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v", key, err)
		}
	}
}

// currentRev reads the cluster's current revision through cli.
func currentRev(t testing.TB, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), "\x00never-written")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// TestWatchOrderingConcurrentWriters: writers put, delete and run
// three-key txns through every member at once; watchers on the leader and
// on both followers each see every revision exactly once, in order, a
// txn's events together in one response at one revision, and all of them
// the very same events.
func TestWatchOrderingConcurrentWriters(t *testing.T) {
	c := agenttest.Start(t, 3, steadyOptions())
	leader := c.Leader()
	start := currentRev(t, c.Client(leader)) + 1

	// One watcher per member, each on its own client.
	wchs := make([]clientv3.WatchChan, len(c.Members))
	for i := range c.Members {
		wchs[i] = c.Client(i).Watch(t.Context(), "o/", clientv3.WithPrefix(), clientv3.WithRev(start))
	}

	const writers, opsPerWriter = 6, 40
	var mu sync.Mutex
	written := map[int64]int{} // revision -> events in it
	var wg sync.WaitGroup
	for w := range writers {
		cli := c.Client(w % len(c.Members))
		wg.Go(func() {
			for i := range opsPerWriter {
				key := fmt.Sprintf("o/%d/%d", w, i%5)
				var rev int64
				n := 1
				switch i % 4 {
				case 0, 1:
					resp, err := cli.Put(t.Context(), key, fmt.Sprint(i))
					if err != nil {
						t.Errorf("put: %v", err)
						return
					}
					rev = resp.Header.Revision
				case 2:
					resp, err := cli.Txn(t.Context()).Then(
						clientv3.OpPut(key+"/a", "x"),
						clientv3.OpPut(key+"/b", "y"),
						clientv3.OpPut(key+"/c", "z"),
					).Commit()
					if err != nil {
						t.Errorf("txn: %v", err)
						return
					}
					rev, n = resp.Header.Revision, 3
				case 3:
					// The key was put two ops ago (same i%5 slot is not
					// guaranteed), so delete the txn's keys, which exist.
					resp, err := cli.Delete(t.Context(), fmt.Sprintf("o/%d/%d/", w, (i-1)%5), clientv3.WithPrefix())
					if err != nil {
						t.Errorf("delete: %v", err)
						return
					}
					if resp.Deleted == 0 {
						continue
					}
					rev, n = resp.Header.Revision, int(resp.Deleted)
				}
				mu.Lock()
				written[rev] = n
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	revs := make([]int64, 0, len(written))
	for rev, n := range written {
		total += n
		revs = append(revs, rev)
	}
	slices.Sort(revs)
	if revs[0] != start || revs[len(revs)-1] != start+int64(len(revs))-1 {
		t.Fatalf("writes did not produce consecutive revisions from %d: %d..%d over %d writes", start, revs[0], revs[len(revs)-1], len(revs))
	}

	var first []*clientv3.Event
	for i, wch := range wchs {
		resps := recvResponses(t, wch, total)
		var evs []*clientv3.Event
		last := start - 1
		for _, r := range resps {
			// clientv3 delivers one wire response per WatchResponse: a
			// revision's events must never be split across two.
			byRev := map[int64]int{}
			for _, e := range r.Events {
				rev := e.Kv.ModRevision
				if rev < last || (rev == last && byRev[rev] == 0) {
					t.Fatalf("member %d: revision %d after %d (duplicate or out of order)", i, rev, last)
				}
				if rev > last+1 && byRev[rev] == 0 {
					t.Fatalf("member %d: gap: revision %d after %d", i, rev, last)
				}
				last = rev
				byRev[rev]++
			}
			for rev, n := range byRev {
				if n != written[rev] {
					t.Fatalf("member %d: revision %d delivered with %d events in one response, want all %d", i, rev, n, written[rev])
				}
			}
			evs = append(evs, r.Events...)
		}
		if last != revs[len(revs)-1] {
			t.Fatalf("member %d: last revision %d, want %d", i, last, revs[len(revs)-1])
		}
		if first == nil {
			first = evs
			continue
		}
		if got, want := describe(evs), describe(first); got != want {
			t.Fatalf("member %d saw different events than member 0:\n%s\nvs\n%s", i, got, want)
		}
	}
	c.CheckConverged()
}

// TestWatchResumeAndStartRevisions: a watcher whose stream is dropped
// resumes on another member from the last revision it saw plus one and
// misses nothing; start revision 0 means the next revision; WithRev(1)
// replays all history.
func TestWatchResumeAndStartRevisions(t *testing.T) {
	c := agenttest.Start(t, 3, steadyOptions())
	leader, follower := c.Leader(), c.Follower()
	writer := c.Client(leader)

	for i := range 3 {
		mustPut(t, writer, fmt.Sprintf("r/%d", i), "old")
	}

	// start_revision 0: from the next revision, none of the three above.
	watcherCli := c.Client(leader)
	ctx, cancel := context.WithCancel(t.Context())
	wch := watcherCli.Watch(ctx, "r/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if r := recvOne(t, wch); !r.Created {
		t.Fatalf("first response is not the created notification: %+v", r)
	}
	for i := range 4 {
		mustPut(t, writer, fmt.Sprintf("r/%d", i), "new")
	}
	evs := recvEvents(t, wch, 4)
	for _, e := range evs {
		if string(e.Kv.Value) != "new" {
			t.Fatalf("start revision 0 replayed an old event: %s", describe(evs))
		}
	}
	lastSeen := evs[3].Kv.ModRevision

	// Drop the stream: cancel the watch and close the client.
	cancel()
	watcherCli.Close()
	var missed []string
	for i := range 5 {
		k := fmt.Sprintf("r/missed/%d", i)
		mustPut(t, writer, k, "while-away")
		missed = append(missed, k)
	}

	// Resume on a follower from lastSeen+1.
	resumed := c.Client(follower).Watch(t.Context(), "r/", clientv3.WithPrefix(), clientv3.WithRev(lastSeen+1))
	evs = recvEvents(t, resumed, 5)
	for i, e := range evs {
		if string(e.Kv.Key) != missed[i] || e.Kv.ModRevision != lastSeen+1+int64(i) {
			t.Fatalf("resumed watch got %s, want %v from revision %d", describe(evs), missed, lastSeen+1)
		}
	}
	// ... and goes on with live events.
	rev := mustPut(t, writer, "r/live", "x")
	if evs := recvEvents(t, resumed, 1); evs[0].Kv.ModRevision != rev {
		t.Fatalf("live event after resume: %s, want revision %d", describe(evs), rev)
	}

	// WithRev(1): every event since the beginning, on a follower.
	all := c.Client(follower).Watch(t.Context(), "r/", clientv3.WithPrefix(), clientv3.WithRev(1))
	evs = recvEvents(t, all, 3+4+5+1)
	for i := 1; i < len(evs); i++ {
		if evs[i].Kv.ModRevision != evs[i-1].Kv.ModRevision+1 {
			t.Fatalf("historical replay not consecutive: %s", describe(evs))
		}
	}
	if string(evs[0].Kv.Value) != "old" || string(evs[len(evs)-1].Kv.Key) != "r/live" {
		t.Fatalf("historical replay: %s", describe(evs))
	}
}

// TestWatchCompactedStartRevision: a watch from below the compact
// revision is cancelled with CompactRevision set (clientv3: ErrCompacted);
// a watch from the compact revision itself still gets its events.
func TestWatchCompactedStartRevision(t *testing.T) {
	forEachWatchCluster(t, func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client) {
		first := mustPut(t, cli, "c/k", "1")
		for i := 2; i <= 5; i++ {
			mustPut(t, cli, "c/k", fmt.Sprint(i))
		}
		compactAt := first + 3
		if _, err := cli.Compact(t.Context(), compactAt); err != nil {
			t.Fatal(err)
		}
		// A linearizable read: the member has applied the compaction.
		currentRev(t, cli)

		r := recvOne(t, cli.Watch(t.Context(), "c/k", clientv3.WithRev(first+1)))
		if !r.Canceled || r.CompactRevision != compactAt || !errors.Is(r.Err(), rpctypes.ErrCompacted) {
			t.Fatalf("watch below the compaction: canceled=%v compact_revision=%d err=%v, want canceled at %d with ErrCompacted",
				r.Canceled, r.CompactRevision, r.Err(), compactAt)
		}

		evs := recvEvents(t, cli.Watch(t.Context(), "c/k", clientv3.WithRev(compactAt)), 2)
		if evs[0].Kv.ModRevision != compactAt || string(evs[1].Kv.Value) != "5" {
			t.Fatalf("watch from the compact revision: %s", describe(evs))
		}
	})
}

// TestWatchFiltersAndPrevKV: NOPUT and NODELETE filters, and prev_kv on
// updates and deletes (none on a create).
func TestWatchFiltersAndPrevKV(t *testing.T) {
	forEachWatchCluster(t, func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		onlyDeletes := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFilterPut())
		onlyPuts := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFilterDelete())
		withPrev := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithPrevKV())
		plain := cli.Watch(ctx, "f/", clientv3.WithPrefix())
		// Make sure all four are registered before writing: each gets
		// an event of a key written only for that purpose.
		mustPut(t, cli, "f/sync", "")
		for _, w := range []clientv3.WatchChan{onlyPuts, withPrev, plain} {
			recvEvents(t, w, 1)
		}

		mustPut(t, cli, "f/a", "1")
		mustPut(t, cli, "f/a", "2")
		if _, err := cli.Delete(ctx, "f/a"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Delete(ctx, "f/sync"); err != nil {
			t.Fatal(err)
		}

		dels := recvEvents(t, onlyDeletes, 2)
		if got := describe(dels); !strings.HasPrefix(got, "DELETE f/a@") || !strings.Contains(got, "DELETE f/sync@") {
			t.Fatalf("NOPUT watcher: %s", got)
		}
		puts := recvEvents(t, onlyPuts, 2)
		if puts[0].Type != mvccpb.PUT || puts[1].Type != mvccpb.PUT || string(puts[1].Kv.Value) != "2" {
			t.Fatalf("NODELETE watcher: %s", describe(puts))
		}

		evs := recvEvents(t, withPrev, 4)
		if evs[0].PrevKv != nil {
			t.Fatalf("create event carries prev_kv %v", evs[0].PrevKv)
		}
		if evs[1].PrevKv == nil || string(evs[1].PrevKv.Value) != "1" {
			t.Fatalf("update prev_kv = %v, want value 1", evs[1].PrevKv)
		}
		if evs[2].Type != mvccpb.DELETE || evs[2].PrevKv == nil || string(evs[2].PrevKv.Value) != "2" || evs[2].PrevKv.Version != 2 {
			t.Fatalf("delete prev_kv = %v, want value 2 at version 2", evs[2].PrevKv)
		}
		if evs[3].PrevKv == nil || string(evs[3].PrevKv.Key) != "f/sync" {
			t.Fatalf("delete of f/sync prev_kv = %v", evs[3].PrevKv)
		}
		for _, e := range recvEvents(t, plain, 4) {
			if e.PrevKv != nil {
				t.Fatalf("watcher without prev_kv got one: %v", e.PrevKv)
			}
		}
	})
}

// TestWatchProgressNotify: with a short interval set through the agent's
// configuration, an idle watcher created with progress_notify gets empty
// responses carrying the current revision.
func TestWatchProgressNotify(t *testing.T) {
	opts := steadyOptions()
	opts.Configure = func(_ int, cfg *agent.Config) {
		cfg.Store.WatchProgressNotifyInterval = 200 * time.Millisecond
	}
	c := agenttest.Start(t, 3, opts)
	cli := c.Client(c.Follower())
	rev := mustPut(t, cli, "p/other", "x")
	wch := cli.Watch(t.Context(), "p/idle", clientv3.WithProgressNotify())
	for range 2 {
		r := recvOne(t, wch)
		if !r.IsProgressNotify() {
			t.Fatalf("idle watcher got %+v, want a progress notification", r)
		}
		if r.Header.Revision < rev {
			t.Fatalf("progress revision %d below the last write %d", r.Header.Revision, rev)
		}
		if r.Header.ClusterId == 0 || r.Header.MemberId == 0 || r.Header.RaftTerm == 0 {
			t.Fatalf("progress header incomplete: %+v", r.Header)
		}
	}
	// A watcher without the option, on the same stream, gets nothing
	// but its events, however many intervals pass.
	quiet := cli.Watch(t.Context(), "p/quiet")
	for range 3 {
		if r := recvOne(t, wch); !r.IsProgressNotify() {
			t.Fatalf("idle watcher got %+v, want a progress notification", r)
		}
	}
	rev = mustPut(t, cli, "p/quiet", "v")
	if r := recvOne(t, quiet); len(r.Events) != 1 || r.Events[0].Kv.ModRevision != rev {
		t.Fatalf("watcher without progress_notify got %+v before its event", r)
	}
}

// TestWatchRequestProgress: a progress request is answered by an empty
// response with watch_id -1 and the current revision in the header;
// clientv3 surfaces it as IsProgressNotify.
func TestWatchRequestProgress(t *testing.T) {
	forEachWatchCluster(t, func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		wch := cli.Watch(ctx, "rp/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		recvOne(t, wch) // created
		rev := mustPut(t, cli, "rp/a", "1")
		recvEvents(t, wch, 1)
		if err := cli.RequestProgress(ctx); err != nil {
			t.Fatal(err)
		}
		r := recvOne(t, wch)
		if !r.IsProgressNotify() || r.Header.Revision != rev {
			t.Fatalf("progress reply %+v, want a progress notification at revision %d", r, rev)
		}

		// On the wire: watch_id -1.
		ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{Key: []byte("rp/x")}}}); err != nil {
			t.Fatal(err)
		}
		if created, err := ws.Recv(); err != nil || !created.Created {
			t.Fatalf("create: %v %v", created, err)
		}
		if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}}); err != nil {
			t.Fatal(err)
		}
		p, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if p.WatchId != -1 || len(p.Events) != 0 || p.Created || p.Canceled || p.Header.Revision != rev {
			t.Fatalf("progress reply on the wire: %v, want watch_id -1 at revision %d", p, rev)
		}
	})
}

// TestWatchWireErrors: replies to bad creates and cancels are etcd's.
func TestWatchWireErrors(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	send := func(r *pb.WatchRequest) *pb.WatchResponse {
		t.Helper()
		if err := ws.Send(r); err != nil {
			t.Fatal(err)
		}
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.ClusterId == 0 || resp.Header.MemberId == 0 || resp.Header.Revision == 0 {
			t.Fatalf("incomplete header %v", resp.Header)
		}
		return resp
	}
	create := func(c *pb.WatchCreateRequest) *pb.WatchResponse {
		return send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: c}})
	}
	if r := create(&pb.WatchCreateRequest{Key: []byte("a"), WatchId: 7}); !r.Created || r.Canceled || r.WatchId != 7 {
		t.Fatalf("create with id 7: %v", r)
	}
	if r := create(&pb.WatchCreateRequest{Key: []byte("b"), WatchId: 7}); !r.Created || !r.Canceled || r.WatchId != -1 ||
		r.CancelReason != "mvcc: duplicate watch ID provided on the WatchStream" {
		t.Fatalf("duplicate id: %v", r)
	}
	if r := create(&pb.WatchCreateRequest{Key: []byte("b"), StartRevision: -1}); !r.Canceled || r.CancelReason != rpctypes.ErrCompacted.Error() {
		t.Fatalf("negative start revision: %v", r)
	}
	if r := create(&pb.WatchCreateRequest{Key: []byte("b"), RangeEnd: []byte("a")}); !r.Canceled || r.CancelReason != "mvcc: watcher range is empty" {
		t.Fatalf("empty range: %v", r)
	}
	if r := send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}}); !r.Canceled || r.WatchId != 7 {
		t.Fatalf("cancel: %v", r)
	}
	// Cancelling it again is ignored (etcd sends nothing); the next reply
	// is for the following request.
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: 7}}}); err != nil {
		t.Fatal(err)
	}
	if r := create(&pb.WatchCreateRequest{Key: []byte("c")}); !r.Created || r.Canceled || r.WatchId != 0 {
		t.Fatalf("create after unknown cancel: %v", r)
	}
}

// TestWatchFragment: a txn whose events (with prev_kv) exceed the request
// size limit reaches a fragment watcher in several responses on the wire,
// which clientv3 puts back together into one.
func TestWatchFragment(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	ctx := t.Context()
	big := strings.Repeat("v", 400*1024)
	const keys = 3
	for i := range keys {
		mustPut(t, cli, fmt.Sprintf("frag/%d", i), big)
	}
	start := currentRev(t, cli) + 1

	// Raw stream: observe the fragments themselves.
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("frag/"), RangeEnd: []byte("frag0"), PrevKv: true, Fragment: true, StartRevision: start,
	}}}); err != nil {
		t.Fatal(err)
	}
	if r, err := ws.Recv(); err != nil || !r.Created {
		t.Fatalf("create: %v %v", r, err)
	}
	whole := cli.Watch(ctx, "frag/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment(), clientv3.WithRev(start))

	// 1.2 MB of new values in one request (below the 1.5 MiB limit);
	// with the 1.2 MB of previous values the events are twice that.
	var ops []clientv3.Op
	for i := range keys {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("frag/%d", i), strings.ToUpper(big)))
	}
	tr, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		t.Fatal(err)
	}

	var parts []*pb.WatchResponse
	events := 0
	for events < keys {
		r, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, r)
		events += len(r.Events)
	}
	if len(parts) < 2 {
		t.Fatalf("events arrived in %d response, want fragments", len(parts))
	}
	for i, p := range parts {
		if p.Fragment != (i < len(parts)-1) {
			t.Fatalf("part %d of %d: fragment=%v", i, len(parts), p.Fragment)
		}
		if p.Header.Revision != tr.Header.Revision {
			t.Fatalf("part %d header revision %d, want %d", i, p.Header.Revision, tr.Header.Revision)
		}
	}

	r := recvOne(t, whole)
	if len(r.Events) != keys {
		t.Fatalf("clientv3 got %d events in the reassembled response, want %d", len(r.Events), keys)
	}
	for _, e := range r.Events {
		if e.PrevKv == nil || string(e.PrevKv.Value) != big || string(e.Kv.Value) != strings.ToUpper(big) {
			t.Fatalf("reassembled event for %s incomplete", e.Kv.Key)
		}
	}
}

// TestWatchRequireLeader: on a member cut off from the others, a watch
// with WithRequireLeader is refused with ErrNoLeader, and one opened before
// the cut is ended with it; a plain watch stays open and sees the writes
// made once the member is back.
func TestWatchRequireLeader(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	f := c.Follower()
	cli := c.Client(f)
	srv := c.Members[f].Agent.Server()

	before := cli.Watch(clientv3.WithRequireLeader(t.Context()), "rl/k")
	plain := cli.Watch(t.Context(), "rl/k")
	mustPut(t, c.Client(c.Leader()), "rl/k", "1")
	recvEvents(t, before, 1)
	recvEvents(t, plain, 1)

	c.Fabric.Isolate(c.Members[f].Name)
	deadline := time.Now().Add(watchWait)
	for srv.HasLeader() {
		if time.Now().After(deadline) {
			t.Fatal("isolated member still sees a leader")
		}
		time.Sleep(10 * time.Millisecond)
	}

	refused := cli.Watch(clientv3.WithRequireLeader(metadata.AppendToOutgoingContext(t.Context(), "stream", "new")), "rl/k")
	if r := recvOne(t, refused); !errors.Is(r.Err(), rpctypes.ErrNoLeader) {
		t.Fatalf("new require-leader watch without a leader: %+v (err %v), want ErrNoLeader", r, r.Err())
	}
	if r := recvOne(t, before); !errors.Is(r.Err(), rpctypes.ErrNoLeader) {
		t.Fatalf("open require-leader watch after losing the leader: %+v (err %v), want ErrNoLeader", r, r.Err())
	}

	c.Fabric.HealAll()
	rev := putRetry(t, c, "rl/k", "2")
	if evs := recvEvents(t, plain, 1); evs[0].Kv.ModRevision != rev {
		t.Fatalf("plain watch after heal: %s, want revision %d", describe(evs), rev)
	}
	c.CheckConverged()
}

// TestWatchTenThousandWatchers: 10,000 watchers of one prefix over four
// clients (several streams each) all receive every event, in order. Most
// of them fall behind on the way (each stream's buffer holds two
// revisions' worth) and are caught up from the store.
func TestWatchTenThousandWatchers(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	const clients, events = 4, 10
	watchers, streamsPerClient := 10000, 5
	if raceEnabled || testing.Short() {
		// Under the race detector 10,000 take a minute. With 500 on
		// four streams the same happens: each stream's buffer fills
		// and watchers fall behind.
		watchers, streamsPerClient = 500, 1
	}
	t.Logf("%d watchers", watchers)
	var chans []clientv3.WatchChan
	var mu sync.Mutex
	var wg sync.WaitGroup
	for ci := range clients {
		cli := c.Client()
		for si := range streamsPerClient {
			// Distinct metadata makes clientv3 open a separate stream.
			ctx := metadata.AppendToOutgoingContext(t.Context(), "stream", fmt.Sprint(si))
			wg.Go(func() {
				for range watchers / clients / streamsPerClient {
					wch := cli.Watch(ctx, "many/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
					if r, err := firstResponse(wch); err != nil || !r.Created {
						t.Errorf("client %d stream %d: first response %+v (%v), want created", ci, si, r, err)
						return
					}
					mu.Lock()
					chans = append(chans, wch)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if got := c.Members[0].Agent.Server().WatchStats().Watchers; got != watchers {
		t.Fatalf("hub has %d watchers, want %d", got, watchers)
	}
	writer := c.Client()
	first := int64(0)
	for i := range events {
		rev := mustPut(t, writer, fmt.Sprintf("many/%d", i), "v")
		if i == 0 {
			first = rev
		}
	}
	for _, wch := range chans {
		wg.Go(func() {
			got := 0
			timeout := time.After(watchWait)
			for got < events {
				select {
				case r := <-wch:
					for _, e := range r.Events {
						if e.Kv.ModRevision != first+int64(got) {
							t.Errorf("event at revision %d, want %d", e.Kv.ModRevision, first+int64(got))
							return
						}
						got++
					}
				case <-timeout:
					t.Errorf("watcher got %d of %d events", got, events)
					return
				}
			}
		})
	}
	wg.Wait()
}
