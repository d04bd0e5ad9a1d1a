package server_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concordkv/concord/agent"
	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/core/server"
)

// agenttest's timings: election timeout 500 ms, so the lease checkpoint
// interval is 2.5 s and a promotion extends leases by 500 ms.
const (
	electionTimeout    = 500 * time.Millisecond
	checkpointInterval = 5 * electionTimeout
)

// keepAlive keeps lease id alive until the test ends and counts answers.
func keepAlive(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) *atomic.Int64 {
	t.Helper()
	ch, err := cli.KeepAlive(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	go func() {
		for range ch {
			n.Add(1)
		}
	}()
	return &n
}

// holdFor checks every 100 ms for d that key exists, through cli.
func holdFor(t *testing.T, cli *clientv3.Client, key string, d time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		resp, err := cli.Get(ctx, key)
		cancel()
		if err != nil {
			t.Fatalf("get %s after %v: %v", key, time.Since(start), err)
		}
		if len(resp.Kvs) != 1 {
			t.Fatalf("%s (kept alive) gone after %v", key, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLeaseKeptAliveSurvivesLeaderStop(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	leader := c.Leader()
	var others []int
	for i := range c.Members {
		if i != leader {
			others = append(others, i)
		}
	}
	cli := c.Client() // every member: the client moves when the leader goes
	g, err := cli.Grant(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "held", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	answers := keepAlive(t, cli, g.ID)
	holdFor(t, cli, "held", time.Second)
	c.Stop(leader)
	survivors := c.Client(others...)
	// Three TTLs after the leader left, the lease still lives.
	holdFor(t, survivors, "held", 6*time.Second)
	ttl, err := survivors.TimeToLive(t.Context(), g.ID)
	if err != nil || ttl.TTL <= 0 {
		t.Fatalf("timetolive after leader stop = %+v, %v", ttl, err)
	}
	t.Logf("%d keepalive answers; lease alive with %d s left", answers.Load(), ttl.TTL)
	c.CheckConverged()
}

func TestLeaseKeptAliveSurvivesLeaderIsolation(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	leader := c.Leader()
	var others []int
	for i := range c.Members {
		if i != leader {
			others = append(others, i)
		}
	}
	cli := c.Client(others...) // followers only: they forward to whoever leads
	g, err := cli.Grant(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "held", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	keepAlive(t, cli, g.ID)
	holdFor(t, cli, "held", time.Second)
	// The leader is cut off as if it had crashed: it cannot revoke
	// anything, and the new leader must not expire the lease.
	c.Fabric.Isolate(c.Members[leader].Name)
	holdFor(t, cli, "held", 6*time.Second)
	if c.Leader() == leader {
		t.Fatal("the isolated member still leads")
	}
	c.Fabric.HealAll()
	c.CheckConverged()
}

// A lease nobody keeps alive expires within TTL + n × (1.1 × checkpoint
// interval + election timeout + 1 s + failover) across n leader changes
// (core/lease's bound); without checkpoints every new leader would restart
// the whole TTL.
func TestLeaseNotKeptAliveExpiresWithinBoundAcrossTwoLeaderChanges(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	cli := c.Client()
	const ttl = 5 * time.Second
	termAt := func() uint64 { return c.Members[c.Leader()].Agent.Server().Node().Status().Term }
	firstTerm := termAt()
	start := time.Now()
	g, err := cli.Grant(t.Context(), int64(ttl/time.Second))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.Put(t.Context(), "doomed", "v", clientv3.WithLease(g.ID))
	if err != nil {
		t.Fatal(err)
	}
	deleted := make(chan time.Time, 1)
	wctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wch := cli.Watch(wctx, "doomed", clientv3.WithRev(p.Header.Revision+1))
	go func() {
		for wr := range wch {
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					deleted <- time.Now()
					return
				}
			}
		}
	}()

	// Two leader changes, at 3 s (after the first checkpoint, due 2.5 s
	// after the grant) and at 4 s.
	var lastChange time.Time
	for _, at := range []time.Duration{3 * time.Second, 4 * time.Second} {
		time.Sleep(time.Until(start.Add(at)))
		from := c.Leader()
		to := (from + 1) % len(c.Members)
		node := c.Members[from].Agent.Server().Node()
		if err := node.TransferLeadership(t.Context(), c.Members[to].Agent.Server().ID()); err != nil {
			t.Fatalf("transfer leadership %d -> %d: %v", from, to, err)
		}
		lastChange = time.Now()
		t.Logf("leadership moved from member %d to %d at %v", from, to, lastChange.Sub(start).Round(time.Millisecond))
	}

	const failover = time.Second // a transfer takes far less
	perChange := checkpointInterval*11/10 + electionTimeout + time.Second + failover
	var at time.Time
	select {
	case at = <-deleted:
	case <-time.After(time.Until(start.Add(ttl + 6*perChange))):
		t.Fatalf("lease not expired %v after its grant", time.Since(start))
	}
	elapsed := at.Sub(start)
	// A loaded machine may add elections of its own: each term is a
	// leader change the bound allows for.
	changes := termAt() - firstTerm
	bound := ttl + time.Duration(changes)*perChange
	// Without checkpoints the last leader would have given the whole TTL
	// again, plus the extension, from its promotion.
	withoutCheckpoints := lastChange.Sub(start) + ttl + electionTimeout
	t.Logf("expired after %v: TTL %v, %d leader changes, bound %v, earliest possible without checkpoints %v",
		elapsed.Round(time.Millisecond), ttl, changes, bound, withoutCheckpoints.Round(time.Millisecond))
	if elapsed < ttl {
		t.Fatalf("lease expired early: %v < TTL %v", elapsed, ttl)
	}
	if elapsed > bound {
		t.Fatalf("lease expired after %v, beyond the bound %v", elapsed, bound)
	}
	if changes == 2 && elapsed >= withoutCheckpoints {
		t.Fatalf("lease expired after %v, not earlier than without checkpoints (%v)", elapsed, withoutCheckpoints)
	}
	c.CheckConverged()
}

func TestLeasesSurviveSingleMemberRestart(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	g, err := cli.Grant(t.Context(), 600)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"r/a", "r/b"} {
		if _, err := cli.Put(t.Context(), k, "v", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	short, err := cli.Grant(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "r/short", "v", clientv3.WithLease(short.ID)); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	c.Restart(0)
	cli = c.Client()
	checkLease(t, cli, g.ID, 600, "r/a", "r/b")
	// The short lease survived the restart too, and still expires.
	waitGone(t, cli, "r/short", 10*time.Second)
	if ka, err := cli.KeepAliveOnce(t.Context(), g.ID); err != nil || ka.TTL != 600 {
		t.Fatalf("keepalive after restart = %+v, %v", ka, err)
	}
}

// checkLease checks lease id's granted TTL and attached keys.
func checkLease(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID, granted int64, keys ...string) {
	t.Helper()
	ttl, err := cli.TimeToLive(t.Context(), id, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range ttl.Keys {
		got = append(got, string(k))
	}
	if ttl.GrantedTTL != granted || ttl.TTL <= 0 || !slices.Equal(got, keys) {
		t.Fatalf("lease %x: granted %d, TTL %d, keys %v; want granted %d, keys %v", id, ttl.GrantedTTL, ttl.TTL, got, granted, keys)
	}
}

func waitGone(t *testing.T, cli *clientv3.Client, key string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := cli.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still present after %v", key, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLeasesSurviveFullClusterRestart(t *testing.T) {
	members := startAgents(t, 3, nil)
	cli := agentClient(t, members)
	g, err := cli.Grant(t.Context(), 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "full/a", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	short, err := cli.Grant(t.Context(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(t.Context(), "full/short", "v", clientv3.WithLease(short.ID)); err != nil {
		t.Fatal(err)
	}
	cli.Close()
	for _, m := range members {
		m.stop(t)
	}
	members = startAgents(t, 3, members)
	cli = agentClient(t, members)
	checkLease(t, cli, g.ID, 600, "full/a")
	list, err := cli.Leases(t.Context())
	if err != nil || len(list.Leases) != 2 {
		t.Fatalf("leases after restart: %v, %v", list, err)
	}
	waitGone(t, cli, "full/short", 10*time.Second)
	if ka, err := cli.KeepAliveOnce(t.Context(), g.ID); err != nil || ka.TTL != 600 {
		t.Fatalf("keepalive after restart = %+v, %v", ka, err)
	}
}

// testAgent is one member of a cluster started directly with agent.Start,
// so that every member can be stopped and all started again together
// (agenttest restarts one member at a time and waits for it to serve).
type testAgent struct {
	name, client, peer, dir string
	a                       *agent.Agent
}

func (m *testAgent) stop(t *testing.T) {
	t.Helper()
	if m.a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.a.Close(ctx); err != nil {
		t.Errorf("stop %s: %v", m.name, err)
	}
	m.a = nil
}

// startAgents starts n members bootstrapped together, or again the
// members of prev from their data dirs, and waits until all serve.
func startAgents(t *testing.T, n int, prev []*testAgent) []*testAgent {
	t.Helper()
	members := prev
	if members == nil {
		dir := t.TempDir()
		for i := range n {
			members = append(members, &testAgent{name: fmt.Sprintf("m%d", i), client: freeAddr(t), peer: freeAddr(t), dir: filepath.Join(dir, fmt.Sprint(i))})
		}
	}
	var initial []string
	for _, m := range members {
		initial = append(initial, m.name+"=http://"+m.peer)
	}
	for _, m := range members {
		cfg := agent.DefaultConfig()
		cfg.Name, cfg.DataDir = m.name, m.dir
		cfg.Network.ListenClientURLs = []string{"http://" + m.client}
		cfg.Network.AdvertiseClientURLs = cfg.Network.ListenClientURLs
		cfg.Network.ListenPeerURLs = []string{"http://" + m.peer}
		cfg.Network.InitialAdvertisePeerURLs = cfg.Network.ListenPeerURLs
		cfg.Cluster.InitialCluster = strings.Join(initial, ",")
		cfg.Cluster.InitialClusterToken = "lease-restart"
		cfg.Cluster.InitialClusterState = agent.ClusterStateNew
		cfg.Raft.HeartbeatInterval, cfg.Raft.ElectionTimeout = 50*time.Millisecond, electionTimeout
		a, err := agent.Start(t.Context(), cfg, agent.Options{})
		if err != nil {
			t.Fatalf("start %s: %v", m.name, err)
		}
		m.a = a
		t.Cleanup(func() { m.stop(t) })
	}
	for _, m := range members {
		select {
		case <-m.a.Ready():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s not ready after 30 s", m.name)
		}
	}
	return members
}

func agentClient(t *testing.T, members []*testAgent) *clientv3.Client {
	t.Helper()
	var eps []string
	for _, m := range members {
		eps = append(eps, m.client)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A snapshot install (what a lagging follower receives) reloads the lease
// table from the snapshot's database and re-attaches its keys.
func TestLeaseTableFollowsSnapshotInstall(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	srv := c.Members[0].Agent.Server()
	a, err := cli.Grant(t.Context(), 600)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"s/a1", "s/a2"} {
		if _, err := cli.Put(t.Context(), k, "v", clientv3.WithLease(a.ID)); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := server.TakeSnapshot(srv)
	if err != nil {
		t.Fatal(err)
	}
	// After the snapshot: a is revoked, b granted.
	if _, err := cli.Revoke(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	b, err := cli.Grant(t.Context(), 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.InstallSnapshot(srv, snap); err != nil {
		t.Fatal(err)
	}
	checkLease(t, cli, a.ID, 600, "s/a1", "s/a2")
	if ttl, err := cli.TimeToLive(t.Context(), b.ID); err != nil || ttl.TTL != -1 {
		t.Fatalf("lease granted after the snapshot: %+v, %v; want TTL -1", ttl, err)
	}
	// The reloaded lease works: a revoke deletes its re-attached keys.
	if _, err := cli.Revoke(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Get(t.Context(), "s/", clientv3.WithPrefix()); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("after revoke: %v, %v", resp, err)
	}
}
