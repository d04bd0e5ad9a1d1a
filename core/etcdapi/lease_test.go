package etcdapi_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent/agenttest"
)

// Lease tests run against agenttest clusters with the watch tests'
// steadyOptions (election timeout 2 s, heartbeat 100 ms: etcd's minimum TTL
// is then ceil(30 × 100 ms) = 3 s), so that a loaded machine does not add
// elections: a write whose leader changed has an unknown outcome.

func TestLeaseGrantRevokeTimeToLiveLeases(t *testing.T) {
	forEachWatchCluster(t, func(t *testing.T, _ *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		g, err := cli.Grant(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if g.ID <= 0 || g.TTL != 30 {
			t.Fatalf("grant = ID %d TTL %d, want a positive ID and TTL 30", g.ID, g.TTL)
		}
		// A client-chosen ID; granting it twice is etcd's error.
		const mine = clientv3.LeaseID(0x1234)
		if _, err := grantID(ctx, cli, mine, 20); err != nil {
			t.Fatalf("grant with ID: %v", err)
		}
		if _, err := grantID(ctx, cli, mine, 20); !errors.Is(err, rpctypes.ErrLeaseExist) {
			t.Fatalf("second grant of %x: %v, want %v", mine, err, rpctypes.ErrLeaseExist)
		}
		if _, err := cli.Grant(ctx, 9_000_000_001); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
			t.Fatalf("grant of a too large TTL: %v, want %v", err, rpctypes.ErrLeaseTTLTooLarge)
		}

		for _, k := range []string{"lk/b", "lk/a"} {
			if _, err := cli.Put(ctx, k, "v", clientv3.WithLease(g.ID)); err != nil {
				t.Fatalf("put %s with lease: %v", k, err)
			}
		}
		if _, err := cli.Put(ctx, "lk/unknown", "v", clientv3.WithLease(0x7777)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Fatalf("put with an unknown lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}

		ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
		if err != nil {
			t.Fatal(err)
		}
		if ttl.ID != g.ID || ttl.GrantedTTL != 30 || ttl.TTL <= 0 || ttl.TTL > 30 {
			t.Fatalf("timetolive = %+v", ttl)
		}
		if got := fmt.Sprintf("%s", ttl.Keys); got != "[lk/a lk/b]" {
			t.Fatalf("attached keys %s, want [lk/a lk/b]", got)
		}
		list, err := cli.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []clientv3.LeaseID
		for _, l := range list.Leases {
			ids = append(ids, l.ID)
		}
		if !slices.Contains(ids, g.ID) || !slices.Contains(ids, mine) {
			t.Fatalf("leases %v miss %x or %x", ids, g.ID, mine)
		}

		// Revoke deletes both keys in one revision.
		before, err := cli.Get(ctx, "lk/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		rv, err := cli.Revoke(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rv.Header.Revision != before.Header.Revision+1 {
			t.Fatalf("revoke at revision %d, want %d", rv.Header.Revision, before.Header.Revision+1)
		}
		after, err := cli.Get(ctx, "lk/", clientv3.WithPrefix())
		if err != nil || len(after.Kvs) != 0 {
			t.Fatalf("after revoke: %v keys, %v", after.Kvs, err)
		}
		gone, err := cli.TimeToLive(ctx, g.ID)
		if err != nil || gone.TTL != -1 {
			t.Fatalf("timetolive of a revoked lease = %+v, %v; want TTL -1", gone, err)
		}
		if _, err := cli.Revoke(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Fatalf("second revoke: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
		// The server answers a keepalive of an unknown lease with TTL 0, not
		// an error, and keeps the stream; clientv3 reports the lease gone.
		stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []clientv3.LeaseID{g.ID, mine, g.ID} {
			if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			want := int64(0)
			if id == mine {
				want = 20
			}
			if err != nil || resp.ID != int64(id) || resp.TTL != want || resp.Header == nil || resp.Header.Revision == 0 {
				t.Fatalf("keepalive of %x answered %v, %v; want TTL %d with a header", id, resp, err, want)
			}
		}
		stream.CloseSend()
		if _, err := cli.KeepAliveOnce(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Fatalf("keepalive of a revoked lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
		ka, err := cli.KeepAliveOnce(ctx, mine)
		if err != nil || ka.TTL != 20 {
			t.Fatalf("keepalive = %+v, %v; want TTL 20", ka, err)
		}
	})
}

// grantID grants a lease with a client-chosen ID (clientv3's Grant always
// lets the server choose).
func grantID(ctx context.Context, cli *clientv3.Client, id clientv3.LeaseID, ttl int64) (*pb.LeaseGrantResponse, error) {
	resp, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: int64(id), TTL: ttl})
	return resp, rpctypes.Error(err)
}

func TestLeaseMinTTLRaised(t *testing.T) {
	// etcd's default timings: 1.5 election timeouts = 1.5 s, rounded up.
	c := agenttest.Start(t, 1, agenttest.Options{ElectionTimeout: time.Second, HeartbeatInterval: 100 * time.Millisecond})
	cli := c.Client()
	for _, asked := range []int64{-5, 0, 1, 2, 3} {
		g, err := cli.Grant(t.Context(), asked)
		if err != nil {
			t.Fatal(err)
		}
		want := max(asked, 2)
		if g.TTL != want {
			t.Errorf("grant TTL %d answered TTL %d, want %d", asked, g.TTL, want)
		}
		ttl, err := cli.TimeToLive(t.Context(), g.ID)
		if err != nil || ttl.GrantedTTL != want {
			t.Errorf("timetolive of a TTL %d grant = %+v, %v; want granted TTL %d", asked, ttl, err, want)
		}
	}
}

func TestLeaseExpiryDeletesKeysAndNotifiesWatchers(t *testing.T) {
	forEachWatchCluster(t, func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		start := time.Now()
		g, err := cli.Grant(ctx, 1) // raised to the minimum, 3 s
		if err != nil {
			t.Fatal(err)
		}
		if g.TTL != 3 {
			t.Fatalf("granted TTL %d, want the minimum 3", g.TTL)
		}
		var last int64
		for _, k := range []string{"exp/1", "exp/2", "exp/3"} {
			p, err := cli.Put(ctx, k, "v-"+k, clientv3.WithLease(g.ID))
			if err != nil {
				t.Fatal(err)
			}
			last = p.Header.Revision
		}
		if _, err := cli.Put(ctx, "exp/kept", "no lease"); err != nil {
			t.Fatal(err)
		}
		// Watched on another member than the one the client uses, too.
		watchers := []*clientv3.Client{cli, c.Client(c.Leader())}
		for _, w := range watchers {
			wch := w.Watch(ctx, "exp/", clientv3.WithPrefix(), clientv3.WithRev(last+1), clientv3.WithPrevKV(), clientv3.WithFilterPut())
			var dels []*clientv3.Event
			timeout := time.After(watchWait)
			for len(dels) < 3 {
				select {
				case wr := <-wch:
					if err := wr.Err(); err != nil {
						t.Fatal(err)
					}
					dels = append(dels, wr.Events...)
				case <-timeout:
					t.Fatalf("saw %d DELETE events after %v, want 3", len(dels), watchWait)
				}
			}
			for i, ev := range dels {
				want := fmt.Sprintf("exp/%d", i+1)
				if ev.Type != mvccpb.DELETE || string(ev.Kv.Key) != want || ev.Kv.ModRevision != dels[0].Kv.ModRevision ||
					ev.PrevKv == nil || string(ev.PrevKv.Value) != "v-"+want {
					t.Fatalf("event %d = %v (prev %v), want DELETE %s with its previous value, all at one revision", i, ev, ev.PrevKv, want)
				}
			}
		}
		elapsed := time.Since(start)
		// TTL 3 s plus the promotion extension (one election timeout) at
		// most, plus the time to commit the revoke (generous: the machine
		// may be loaded).
		if elapsed < 3*time.Second || elapsed > 10*time.Second {
			t.Errorf("lease expired after %v", elapsed)
		}
		t.Logf("TTL 3 s lease expired and its keys' DELETE events arrived after %v", elapsed)
		resp, err := cli.Get(ctx, "exp/", clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != "exp/kept" {
			t.Fatalf("after expiry: %v, %v", resp.Kvs, err)
		}
		ttl, err := cli.TimeToLive(ctx, g.ID)
		if err != nil || ttl.TTL != -1 {
			t.Fatalf("timetolive of an expired lease = %+v, %v", ttl, err)
		}
	})
}

func TestLeaseKeepAliveThroughFollowerOutlivesTTL(t *testing.T) {
	c := agenttest.Start(t, 3, steadyOptions())
	cli := c.Client(c.Follower()) // the only member the client knows
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "ka/key", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	kach, err := cli.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	var answers atomic.Int64
	go func() {
		for range kach {
			answers.Add(1)
		}
	}()
	// Three TTLs: the lease lives only if the follower's keepalives reach
	// the leader.
	deadline := time.Now().Add(9 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := cli.Get(ctx, "ka/key")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("kept-alive key gone after %v: %v, %v", time.Since(deadline.Add(-9*time.Second)), resp, err)
		}
		ttl, err := cli.TimeToLive(ctx, g.ID)
		if err != nil || ttl.TTL < 0 {
			t.Fatalf("timetolive = %+v, %v", ttl, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// clientv3 renews every TTL/3: about nine answers in nine seconds.
	if n := answers.Load(); n < 5 {
		t.Fatalf("%d keepalive answers in 9 s", n)
	}
	// Once the keepalives stop, the lease expires.
	cancel()
	wait, stop := context.WithTimeout(t.Context(), 15*time.Second)
	defer stop()
	for {
		resp, err := cli.Get(wait, "ka/key")
		if err != nil {
			t.Fatalf("lease did not expire after its keepalives stopped: %v", err)
		}
		if len(resp.Kvs) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.CheckConverged()
}

func TestLeaseRevokeOfTenThousandKeysIsOneRevision(t *testing.T) {
	// Steadier timings: 10,000 keys through a loaded machine's race
	// detector must not cost an election (a write whose leader changed has
	// an unknown outcome, and clientv3 retries a revoke).
	c := agenttest.Start(t, 3, steadyOptions())
	cli := c.Client(c.Follower())
	ctx := t.Context()
	g, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	for i := 0; i < n; i += 128 {
		var ops []clientv3.Op
		for j := i; j < min(i+128, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("many/%05d", j), "v", clientv3.WithLease(g.ID)))
		}
		// The puts are idempotent: one whose outcome is unknown is sent
		// again.
		for attempt := 0; ; attempt++ {
			_, err := cli.Txn(ctx).Then(ops...).Commit()
			if err == nil {
				break
			}
			if attempt == 3 || !transient(err) {
				t.Fatal(err)
			}
			t.Logf("txn %d: %v; again", i/128, err)
		}
	}
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || len(ttl.Keys) != n {
		t.Fatalf("timetolive lists %d keys, want %d (%v)", len(ttl.Keys), n, err)
	}
	before, err := cli.Get(ctx, "many/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || before.Count != n {
		t.Fatalf("count before = %d, %v", before.Count, err)
	}
	revokeRev := before.Header.Revision + 1
	revoking := time.Now()
	rv, err := cli.Revoke(ctx, g.ID)
	t.Logf("revoke of %d keys answered in %v", n, time.Since(revoking))
	switch {
	case err == nil:
		if rv.Header.Revision != revokeRev {
			t.Fatalf("revoke of %d keys at revision %d, want %d (one revision)", n, rv.Header.Revision, revokeRev)
		}
	case errors.Is(err, rpctypes.ErrLeaseNotFound) || transient(err):
		// A leader changed under the revoke and clientv3 sent it again:
		// the events below still show what the first one did.
		t.Logf("revoke: %v", err)
	default:
		t.Fatal(err)
	}
	// Every deletion is at that one revision, in key order, on every member.
	for i := range c.Members {
		w := c.Client(i)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		wch := w.Watch(wctx, "many/", clientv3.WithPrefix(), clientv3.WithRev(revokeRev))
		seen := 0
		for seen < n {
			wr, ok := <-wch
			if !ok || wr.Err() != nil {
				cancel()
				t.Fatalf("member %d: watch ended after %d events: %v", i, seen, wr.Err())
			}
			for _, ev := range wr.Events {
				if ev.Type != mvccpb.DELETE || ev.Kv.ModRevision != revokeRev || string(ev.Kv.Key) != fmt.Sprintf("many/%05d", seen) {
					cancel()
					t.Fatalf("member %d: event %d = %v at revision %d, want a DELETE at %d", i, seen, ev, ev.Kv.ModRevision, revokeRev)
				}
				seen++
			}
		}
		cancel()
	}
	after, err := cli.Get(ctx, "many/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || after.Count != 0 || after.Header.Revision != revokeRev {
		t.Fatalf("after revoke: count %d at revision %d, %v", after.Count, after.Header.Revision, err)
	}
	c.CheckConverged()
}

// transient reports an error after which a write's outcome is unknown
// because leadership moved or time ran out.
func transient(err error) bool {
	return errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrLeaderChanged) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail)
}

// clientv3 opens its keepalive stream with require-leader: a member that
// has known no leader for a while ends it with "no leader", and clientv3
// then closes the keepalive channels opened with WithRequireLeader (and
// only those), as against etcd.
func TestLeaseKeepAliveRequireLeaderEndsWithoutLeader(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	f := c.Follower()
	cli := c.Client(f)
	g, err := cli.Grant(t.Context(), 60)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := cli.KeepAlive(clientv3.WithRequireLeader(t.Context()), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	lenient, err := cli.KeepAlive(t.Context(), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-strict
	<-lenient
	c.Fabric.Isolate(c.Members[f].Name)
	timeout := time.After(15 * time.Second)
	for closed := false; !closed; {
		select {
		case _, ok := <-strict:
			closed = !ok
		case <-timeout:
			t.Fatal("require-leader keepalive channel still open 15 s after its member lost the leader")
		}
	}
	select {
	case _, ok := <-lenient:
		if !ok {
			t.Fatal("keepalive channel without require-leader closed too")
		}
	default:
	}
	c.Fabric.HealAll()
}
