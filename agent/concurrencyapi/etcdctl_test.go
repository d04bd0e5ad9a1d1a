package concurrencyapi_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"

	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
)

// TestEtcdctlLock: the real `etcdctl lock` (clientv3's concurrency.Mutex,
// not the Lock service), the SDK's lock.Mutex and the Lock service queue
// on one NAME and exclude each other, in arrival order.
func TestEtcdctlLock(t *testing.T) {
	testcluster.Tool(t, "etcdctl", "ETCDCTL")
	c := agenttest.Start(t, 3, agenttest.Options{})
	members := memberStubs(t, c)
	cli := c.Client()
	const name = "shared"

	// 1. etcdctl holds the lock.
	holder := startEtcdctl(t, c.Members[0].ClientAddr, "lock", name)
	waitFor(t, 10*time.Second, "etcdctl lock to print its key", func() bool { return len(holder.out.lines()) > 0 })
	etcdctlKey := holder.out.lines()[0]
	if !strings.HasPrefix(etcdctlKey, name+"/") {
		t.Fatalf("etcdctl lock printed %q", holder.out)
	}
	etcdctlToken := createRev(t, cli, etcdctlKey)

	// 2. A lock.Mutex on another member waits, then 3. a Lock call on a third.
	sess, err := session.New(t.Context(), c.Client(1), session.WithTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close(t.Context())
	m := lock.NewMutex(sess, name)
	type tokenResult struct {
		token lock.Token
		err   error
	}
	mutex := async(t, func() tokenResult {
		tok, err := m.Lock(t.Context())
		return tokenResult{tok, err}
	})
	waitFor(t, 5*time.Second, "the Mutex's key", func() bool { return queueLen(t, cli, name) == 2 })
	lease := grant(t, cli, 60)
	service := async(t, func() lockResult { return lockOnce(t.Context(), members[2].lock, name, lease) })
	notYet(t, "lock.Mutex behind etcdctl lock", mutex, 300*time.Millisecond)
	notYet(t, "the Lock service behind etcdctl lock", service, 0)

	// etcdctl unlocks on SIGINT: the Mutex, next in line, holds.
	holder.interrupt(t)
	mr := recv(t, "lock.Mutex after etcdctl unlocked", mutex, 10*time.Second)
	if mr.err != nil {
		t.Fatal(mr.err)
	}
	if int64(mr.token) <= etcdctlToken {
		t.Errorf("Mutex's token %d not above etcdctl's %d", mr.token, etcdctlToken)
	}
	if createRev(t, cli, etcdctlKey) != 0 {
		t.Fatalf("etcdctl's key %s still there after it unlocked", etcdctlKey)
	}
	notYet(t, "the Lock service behind lock.Mutex", service, 300*time.Millisecond)
	if err := m.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	sr := recv(t, "Lock service after the Mutex unlocked", service, 10*time.Second)
	if sr.err != nil {
		t.Fatal(sr.err)
	}
	if tok := createRev(t, cli, sr.key); tok <= int64(mr.token) {
		t.Errorf("Lock service's token %d not above the Mutex's %d", tok, mr.token)
	}

	// 4. etcdctl waits behind the Lock service's hold.
	waiter := startEtcdctl(t, c.Members[1].ClientAddr, "lock", name)
	waitFor(t, 5*time.Second, "etcdctl's key", func() bool { return queueLen(t, cli, name) == 2 })
	time.Sleep(300 * time.Millisecond) // etcdctl must not print a key meanwhile
	if out := waiter.out.String(); out != "" {
		t.Fatalf("etcdctl lock printed %q while the Lock service held the lock", out)
	}
	if _, err := members[0].lock.Unlock(t.Context(), &v3lockpb.UnlockRequest{Key: []byte(sr.key)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "etcdctl lock to print its key after Unlock", func() bool { return len(waiter.out.lines()) > 0 })
	if k := waiter.out.lines()[0]; !strings.HasPrefix(k, name+"/") || k == etcdctlKey {
		t.Errorf("second etcdctl lock printed %q", waiter.out)
	}
	waiter.interrupt(t)
	waitFor(t, 5*time.Second, "the queue to empty", func() bool { return queueLen(t, cli, name) == 0 })
}

// TestEtcdctlElect: the real `etcdctl elect` and `etcdctl elect -l` and
// the Election service take part in one election.
func TestEtcdctlElect(t *testing.T) {
	testcluster.Tool(t, "etcdctl", "ETCDCTL")
	c := agenttest.Start(t, 3, agenttest.Options{})
	members := memberStubs(t, c)
	cli := c.Client()
	name := []byte("elected")

	lease := grant(t, cli, 60)
	won, err := members[0].election.Campaign(t.Context(), &epb.CampaignRequest{Name: name, Lease: lease, Value: []byte("grpc-leader")})
	if err != nil {
		t.Fatal(err)
	}
	listener := startEtcdctl(t, c.Members[1].ClientAddr, "elect", "-l", string(name))
	waitFor(t, 10*time.Second, "etcdctl elect -l to print the gRPC leader", func() bool {
		return slices.Equal(listener.out.lines(), []string{string(won.Leader.Key), "grpc-leader"})
	})

	candidate := startEtcdctl(t, c.Members[2].ClientAddr, "elect", string(name), "etcdctl-cand")
	waitFor(t, 5*time.Second, "etcdctl's candidacy", func() bool { return queueLen(t, cli, string(name)) == 2 })
	time.Sleep(300 * time.Millisecond) // etcdctl elect must not print meanwhile
	if out := candidate.out.String(); out != "" {
		t.Fatalf("etcdctl elect printed %q while the gRPC candidate led", out)
	}

	octx := ctxTimeout(t, 30*time.Second)
	obs, err := members[1].election.Observe(octx, &epb.LeaderRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := obs.Recv(); err != nil || string(resp.Kv.Value) != "grpc-leader" {
		t.Fatalf("Observe: %v %v", resp, err)
	}

	if _, err := members[0].election.Resign(t.Context(), &epb.ResignRequest{Leader: won.Leader}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "etcdctl elect to be elected", func() bool { return len(candidate.out.lines()) == 2 })
	lines := candidate.out.lines()
	if !strings.HasPrefix(lines[0], string(name)+"/") || lines[1] != "etcdctl-cand" {
		t.Fatalf("etcdctl elect printed %q", lines)
	}
	resp, err := obs.Recv()
	if err != nil || string(resp.Kv.Key) != lines[0] || string(resp.Kv.Value) != "etcdctl-cand" {
		t.Fatalf("Observe after the handover: %v %v, want %s=etcdctl-cand", resp, err, lines[0])
	}
	lead, err := members[2].election.Leader(t.Context(), &epb.LeaderRequest{Name: name})
	if err != nil || string(lead.Kv.Value) != "etcdctl-cand" || lead.Kv.CreateRevision <= won.Leader.Rev {
		t.Fatalf("Leader after the handover: %v %v", lead, err)
	}
	waitFor(t, 10*time.Second, "etcdctl elect -l to print the new leader", func() bool {
		return slices.Equal(listener.out.lines(), []string{string(won.Leader.Key), "grpc-leader", lines[0], "etcdctl-cand"})
	})

	// etcdctl resigns on SIGINT: no leader is left.
	candidate.interrupt(t)
	_, err = members[0].election.Leader(t.Context(), &epb.LeaderRequest{Name: name})
	wantStatus(t, "Leader after etcdctl resigned", err, "election: no leader")
}

// queueLen counts the keys under name/ (holder and waiters).
func queueLen(t *testing.T, cli *clientv3.Client, name string) int {
	t.Helper()
	resp, err := cli.Get(t.Context(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("count %s/: %v", name, err)
	}
	return int(resp.Count)
}
