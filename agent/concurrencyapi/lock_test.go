package concurrencyapi_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/agent/agenttest"
)

// TestLock drives the Lock service with its generated gRPC client on a
// three-member cluster.
func TestLock(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	members := memberStubs(t, c)
	cli := c.Client()

	t.Run("exclusion across members", func(t *testing.T) {
		const workersPerMember, rounds = 2, 8
		const name, counter = "excl", "excl-counter"
		var (
			inside atomic.Int32
			mu     sync.Mutex // guards tokens; appended under the lock, so in holding order
			tokens []int64
			wg     sync.WaitGroup
		)
		errs := make(chan error, len(members)*workersPerMember)
		for m := range members {
			mcli := c.Client(m)
			for range workersPerMember {
				lease := grant(t, mcli, 60)
				wg.Go(func() {
					errs <- lockedIncrements(t.Context(), members[m].lock, mcli, name, counter, lease, rounds, &inside, func(tok int64) {
						mu.Lock()
						tokens = append(tokens, tok)
						mu.Unlock()
					})
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		total := len(members) * workersPerMember * rounds
		resp, err := cli.Get(t.Context(), counter)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(resp.Kvs[0].Value); got != strconv.Itoa(total) {
			t.Errorf("counter = %s after %d locked increments", got, total)
		}
		if len(tokens) != total {
			t.Fatalf("%d tokens for %d holds", len(tokens), total)
		}
		for i := 1; i < len(tokens); i++ {
			if tokens[i] <= tokens[i-1] {
				t.Fatalf("token %d of holder %d not above %d of the one before", tokens[i], i, tokens[i-1])
			}
		}
	})

	t.Run("one lease is one acquisition", func(t *testing.T) {
		lease := grant(t, cli, 60)
		first, err := members[0].lock.Lock(t.Context(), &v3lockpb.LockRequest{Name: []byte("same"), Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("same/%x", lease); string(first.Key) != want {
			t.Errorf("key %q, want etcd's %q", first.Key, want)
		}
		rev := createRev(t, cli, string(first.Key))
		second, err := members[1].lock.Lock(ctxTimeout(t, 5*time.Second), &v3lockpb.LockRequest{Name: []byte("same"), Lease: lease})
		if err != nil {
			t.Fatalf("second Lock with the same lease: %v", err)
		}
		if string(second.Key) != string(first.Key) || createRev(t, cli, string(second.Key)) != rev {
			t.Errorf("second Lock with the same lease: key %q (rev %d), want %q (rev %d)", second.Key, createRev(t, cli, string(second.Key)), first.Key, rev)
		}
		if second.Header.Revision < rev {
			t.Errorf("header revision %d below the key's create revision %d", second.Header.Revision, rev)
		}
		if _, err := members[2].lock.Unlock(t.Context(), &v3lockpb.UnlockRequest{Key: first.Key}); err != nil {
			t.Fatal(err)
		}
		if createRev(t, cli, string(first.Key)) != 0 {
			t.Error("key still there after Unlock")
		}
	})

	t.Run("revoking the holder's lease hands the lock on", func(t *testing.T) {
		la, lb := grant(t, cli, 60), grant(t, cli, 60)
		a, err := members[0].lock.Lock(t.Context(), &v3lockpb.LockRequest{Name: []byte("revoke"), Lease: la})
		if err != nil {
			t.Fatal(err)
		}
		b := async(t, func() lockResult { return lockOnce(t.Context(), members[1].lock, "revoke", lb) })
		notYet(t, "Lock of a second lease", b, 300*time.Millisecond)
		tokenA := createRev(t, cli, string(a.Key))
		if _, err := cli.Revoke(t.Context(), clientv3.LeaseID(la)); err != nil {
			t.Fatal(err)
		}
		r := recv(t, "Lock after the holder's lease was revoked", b, 10*time.Second)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if tokenB := createRev(t, cli, r.key); tokenB <= tokenA {
			t.Errorf("next holder's token %d not above the revoked holder's %d", tokenB, tokenA)
		}
		members[1].lock.Unlock(t.Context(), &v3lockpb.UnlockRequest{Key: []byte(r.key)})
	})

	t.Run("a waiter whose lease is revoked is answered at once", func(t *testing.T) {
		la, lc := grant(t, cli, 60), grant(t, cli, 60)
		a, err := members[0].lock.Lock(t.Context(), &v3lockpb.LockRequest{Name: []byte("lost"), Lease: la})
		if err != nil {
			t.Fatal(err)
		}
		w := async(t, func() lockResult { return lockOnce(t.Context(), members[2].lock, "lost", lc) })
		waitFor(t, 5*time.Second, "the waiter's key", func() bool { return createRev(t, cli, fmt.Sprintf("lost/%x", lc)) != 0 })
		if _, err := cli.Revoke(t.Context(), clientv3.LeaseID(lc)); err != nil {
			t.Fatal(err)
		}
		r := recv(t, "Lock of a revoked waiter", w, 5*time.Second)
		wantStatus(t, "Lock of a revoked waiter", r.err, "mutex: session is expired")
		if createRev(t, cli, string(a.Key)) == 0 {
			t.Error("the holder lost its key")
		}
		members[0].lock.Unlock(t.Context(), &v3lockpb.UnlockRequest{Key: a.Key})
	})

	t.Run("a waiter that gives up leaves no key", func(t *testing.T) {
		la, ld := grant(t, cli, 60), grant(t, cli, 60)
		a, err := members[0].lock.Lock(t.Context(), &v3lockpb.LockRequest{Name: []byte("cancel"), Lease: la})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		w := async(t, func() lockResult { return lockOnce(ctx, members[1].lock, "cancel", ld) })
		key := fmt.Sprintf("cancel/%x", ld)
		waitFor(t, 5*time.Second, "the waiter's key", func() bool { return createRev(t, cli, key) != 0 })
		cancel()
		r := recv(t, "cancelled Lock", w, 5*time.Second)
		if status.Code(r.err) != codes.Canceled {
			t.Errorf("cancelled Lock: %v, want Canceled", r.err)
		}
		waitFor(t, 5*time.Second, "the cancelled waiter's key to go", func() bool { return createRev(t, cli, key) == 0 })
		members[0].lock.Unlock(t.Context(), &v3lockpb.UnlockRequest{Key: a.Key})
	})

	t.Run("unknown lease", func(t *testing.T) {
		_, err := members[0].lock.Lock(ctxTimeout(t, 5*time.Second), &v3lockpb.LockRequest{Name: []byte("nolease"), Lease: 0x1234})
		wantStatus(t, "Lock with an unknown lease", err, "etcdserver: requested lease not found")
		if status.Code(err) != codes.NotFound {
			t.Errorf("code %v, want NotFound", status.Code(err))
		}
	})

	t.Run("lease 0 gets a lease of its own", func(t *testing.T) {
		r, err := members[0].lock.Lock(ctxTimeout(t, 5*time.Second), &v3lockpb.LockRequest{Name: []byte("nolease0")})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Get(t.Context(), string(r.Key))
		if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
			t.Fatalf("key of a Lock without a lease: %v %v", resp, err)
		}
		if !strings.HasSuffix(string(r.Key), fmt.Sprintf("/%x", resp.Kvs[0].Lease)) {
			t.Errorf("key %q is not named after its lease %x", r.Key, resp.Kvs[0].Lease)
		}
		ttl, err := cli.TimeToLive(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease))
		if err != nil || ttl.GrantedTTL != 60 {
			t.Errorf("lease of a Lock without one: %+v %v, want granted TTL 60 as etcd's", ttl, err)
		}
		cli.Revoke(t.Context(), clientv3.LeaseID(resp.Kvs[0].Lease))
	})

	c.CheckConverged()
}

type lockResult struct {
	key string
	err error
}

func lockOnce(ctx context.Context, lc v3lockpb.LockClient, name string, lease int64) lockResult {
	resp, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: lease})
	if err != nil {
		return lockResult{err: err}
	}
	return lockResult{key: string(resp.Key)}
}

// lockedIncrements adds one to counter rounds times, each under the lock
// name taken through lc, checking that nobody else is inside meanwhile;
// held receives each hold's token (its key's create revision).
func lockedIncrements(ctx context.Context, lc v3lockpb.LockClient, cli *clientv3.Client, name, counter string, lease int64, rounds int, inside *atomic.Int32, held func(int64)) error {
	for range rounds {
		resp, err := lc.Lock(ctx, &v3lockpb.LockRequest{Name: []byte(name), Lease: lease})
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if n := inside.Add(1); n != 1 {
			return fmt.Errorf("%d holders at once", n)
		}
		get, err := cli.Get(ctx, counter)
		if err != nil {
			return err
		}
		kresp, err := cli.Get(ctx, string(resp.Key))
		if err != nil || len(kresp.Kvs) != 1 {
			return fmt.Errorf("read own lock key %s: %v", resp.Key, err)
		}
		held(kresp.Kvs[0].CreateRevision)
		n := 0
		if len(get.Kvs) == 1 {
			n, _ = strconv.Atoi(string(get.Kvs[0].Value))
		}
		if _, err := cli.Put(ctx, counter, strconv.Itoa(n+1)); err != nil {
			return err
		}
		inside.Add(-1)
		if _, err := lc.Unlock(ctx, &v3lockpb.UnlockRequest{Key: resp.Key}); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
	}
	return nil
}
