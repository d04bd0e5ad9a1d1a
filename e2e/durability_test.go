package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestDurabilityCleanRestart writes 10,000 keys (then overwrites and
// deletes some, so versions and tombstones vary), stops every member with
// SIGTERM and starts them again: every member holds the same keys with the
// same values, create/mod revisions and versions, at the same store
// revision, with the HashKV it had before the stop.
func TestDurabilityCleanRestart(t *testing.T) {
	c := newCluster(t, 3)
	cli := c.client()

	const (
		keys      = 10000
		overwrite = 10  // every 10th key is written twice
		del       = 100 // every 100th key is then deleted
		writers   = 64
	)
	key := func(i int) string { return fmt.Sprintf("d/%05d", i) }
	start := time.Now()
	err := runParallel(t.Context(), writers, keys, func(ctx context.Context, i int) error {
		_, err := cli.Put(ctx, key(i), fmt.Sprintf("v%05d-0", i))
		return err
	})
	if err != nil {
		t.Fatalf("put 10,000 keys: %v", err)
	}
	elapsed := time.Since(start)
	t.Logf("10,000 puts by %d clientv3 writers in %v (%.0f puts/s)", writers, elapsed.Round(time.Millisecond), keys/elapsed.Seconds())
	err = runParallel(t.Context(), writers, keys/overwrite, func(ctx context.Context, i int) error {
		_, err := cli.Put(ctx, key(i*overwrite), fmt.Sprintf("v%05d-1", i*overwrite))
		return err
	})
	if err != nil {
		t.Fatalf("overwrite keys: %v", err)
	}
	err = runParallel(t.Context(), writers, keys/del, func(ctx context.Context, i int) error {
		resp, err := cli.Delete(ctx, key(i*del))
		if err == nil && resp.Deleted != 1 {
			return fmt.Errorf("delete %s deleted %d keys, want 1", key(i*del), resp.Deleted)
		}
		return err
	})
	if err != nil {
		t.Fatalf("delete keys: %v", err)
	}

	before, rev := readPrefix(t, cli, "d/")
	// One revision per write request, starting from 1.
	if want := int64(1 + keys + keys/overwrite + keys/del); rev != want {
		t.Errorf("store revision after %d writes = %d, want %d", keys+keys/overwrite+keys/del, rev, want)
	}
	if want := keys - keys/del; len(before) != want {
		t.Fatalf("read %d keys back, want %d", len(before), want)
	}
	for i := range keys {
		kv, ok := before[key(i)]
		switch {
		case i%del == 0:
			if ok {
				t.Errorf("deleted key %s is present", key(i))
			}
		case !ok:
			t.Errorf("key %s missing before the restart", key(i))
		case i%overwrite == 0 && (kv.Version != 2 || string(kv.Value) != fmt.Sprintf("v%05d-1", i)):
			t.Errorf("overwritten key %s: version %d value %q", key(i), kv.Version, kv.Value)
		case i%overwrite != 0 && (kv.Version != 1 || kv.CreateRevision != kv.ModRevision):
			t.Errorf("key %s written once: version %d, create %d, mod %d", key(i), kv.Version, kv.CreateRevision, kv.ModRevision)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	hash := c.hashKV(rev)

	stopped := time.Now()
	c.stopAll()
	t.Logf("SIGTERM: all members exited cleanly in %v", time.Since(stopped).Round(time.Millisecond))
	restarted := time.Now()
	c.restartAll()
	t.Logf("all members serving again %v after the restart", time.Since(restarted).Round(time.Millisecond))

	for _, m := range c.members {
		// Serializable reads: each member's own data, not the leader's.
		mcli := c.client(m)
		after, mrev := readPrefixSerializable(t, mcli, "d/", rev)
		if mrev != rev {
			t.Errorf("%s: store revision after restart = %d, want %d", m.name, mrev, rev)
		}
		diffKVs(t, m.name, before, after)
	}
	if got := c.hashKV(rev); got != hash {
		t.Errorf("HashKV at revision %d after restart = %#x, want %#x as before", rev, got, hash)
	}
}

// TestDurabilityKillAllDuringWrites streams writes of unique keys from
// concurrent clientv3 writers, SIGKILLs every member at once mid-stream and
// restarts them all, three times. After each restart every acknowledged
// write (of every cycle so far) is present with its value and revision; no
// write appears twice (each key is written once, with a value that names
// it, so a duplicate shows as version 2); and the members agree on HashKV.
func TestDurabilityKillAllDuringWrites(t *testing.T) {
	c := newCluster(t, 3)
	const (
		cycles         = 3
		writers        = 16
		acksBeforeKill = 400 // acknowledged writes in a cycle before the kill
	)
	history := newWriteHistory()
	for cycle := range cycles {
		cli, err := newClient(c.members...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		var acked atomic.Int64
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for seq := 0; ctx.Err() == nil; seq++ {
					key := fmt.Sprintf("s/c%d/w%02d/%06d", cycle, w, seq)
					value := fmt.Sprintf("cycle %d writer %d seq %d", cycle, w, seq)
					history.attempt(key, value)
					opCtx, opCancel := context.WithTimeout(ctx, 5*time.Second)
					resp, err := cli.Put(opCtx, key, value)
					opCancel()
					if err == nil {
						history.ack(key, resp.Header.Revision)
						acked.Add(1)
					}
				}
			})
		}
		waitFor(t, 30*time.Second, "acknowledged writes before the kill", func() bool { return acked.Load() >= acksBeforeKill })
		c.killAt(c.members...)
		killedWith := acked.Load()
		cancel()
		wg.Wait()
		_ = cli.Close()
		attempts, acks := history.counts()
		t.Logf("cycle %d: SIGKILLed all members with %d writes acknowledged in this cycle (%d attempted, %d acknowledged in all)",
			cycle, killedWith, attempts, acks)

		restarted := time.Now()
		c.restartAll()
		t.Logf("cycle %d: all members serving %v after the restart", cycle, time.Since(restarted).Round(time.Millisecond))
		rev := history.verify(t, c.client())
		c.hashKV(rev)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// writeHistory records every write attempted by the writers and, for the
// acknowledged ones, the revision the cluster answered.
type writeHistory struct {
	mu     sync.Mutex
	writes map[string]*write // by key; each key is written at most once
}

type write struct {
	value string
	acked bool
	rev   int64
}

func newWriteHistory() *writeHistory { return &writeHistory{writes: map[string]*write{}} }

func (h *writeHistory) attempt(key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes[key] = &write{value: value}
}

func (h *writeHistory) ack(key string, rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := h.writes[key]
	w.acked, w.rev = true, rev
}

func (h *writeHistory) counts() (attempts, acks int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.writes {
		if w.acked {
			acks++
		}
	}
	return len(h.writes), acks
}

// verify reads every key under s/ and checks it against the history:
// acknowledged writes are present at their revision; whatever is present
// was attempted, with that value, once. It returns the read's revision.
func (h *writeHistory) verify(t *testing.T, cli *clientv3.Client) int64 {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	got, rev := readPrefix(t, cli, "s/")
	byRev := map[int64]string{}
	var unackedPresent int
	for key, kv := range got {
		w, ok := h.writes[key]
		switch {
		case !ok:
			t.Errorf("key %s present but never written", key)
			continue
		case string(kv.Value) != w.value:
			t.Errorf("key %s = %q, want %q", key, kv.Value, w.value)
		case kv.Version != 1 || kv.CreateRevision != kv.ModRevision:
			t.Errorf("key %s written once appears with version %d, create %d, mod %d: applied twice", key, kv.Version, kv.CreateRevision, kv.ModRevision)
		}
		if other, dup := byRev[kv.ModRevision]; dup {
			t.Errorf("keys %s and %s share mod revision %d, but each was a separate put", key, other, kv.ModRevision)
		}
		byRev[kv.ModRevision] = key
		if !w.acked {
			unackedPresent++
		}
	}
	var acks, lost int
	for key, w := range h.writes {
		if !w.acked {
			continue
		}
		acks++
		kv, ok := got[key]
		switch {
		case !ok:
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged write %s (revision %d) lost", key, w.rev)
			}
		case kv.ModRevision != w.rev:
			t.Errorf("acknowledged write %s: mod revision %d, but the put answered revision %d", key, kv.ModRevision, w.rev)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost", lost, acks)
	}
	t.Logf("after restart at revision %d: all %d acknowledged writes present; %d unacknowledged writes were applied (allowed)",
		rev, acks-lost, unackedPresent)
	return rev
}

// runParallel calls fn for 0..n-1 from the given number of goroutines and
// returns the first error; the others stop taking work after it.
func runParallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				opCtx, opCancel := context.WithTimeout(ctx, 10*time.Second)
				err := fn(opCtx, i)
				opCancel()
				if err != nil {
					cancel(fmt.Errorf("item %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// readPrefix reads every key under prefix linearizably and returns them by
// key, with the response's store revision.
func readPrefix(t *testing.T, cli *clientv3.Client, prefix string) (map[string]*mvccpb.KeyValue, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("get prefix %s: %v", prefix, err)
	}
	return kvsByKey(t, resp), resp.Header.Revision
}

// readPrefixSerializable reads every key under prefix from the one member
// cli talks to, once that member has applied revision atLeast.
func readPrefixSerializable(t *testing.T, cli *clientv3.Client, prefix string, atLeast int64) (map[string]*mvccpb.KeyValue, int64) {
	t.Helper()
	var resp *clientv3.GetResponse
	waitFor(t, convergeTimeout, fmt.Sprintf("member to apply revision %d", atLeast), func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var err error
		resp, err = cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable())
		return err == nil && resp.Header.Revision >= atLeast
	})
	return kvsByKey(t, resp), resp.Header.Revision
}

func kvsByKey(t *testing.T, resp *clientv3.GetResponse) map[string]*mvccpb.KeyValue {
	t.Helper()
	if resp.More || int64(len(resp.Kvs)) != resp.Count {
		t.Fatalf("get prefix returned %d kvs of %d (more %v)", len(resp.Kvs), resp.Count, resp.More)
	}
	out := make(map[string]*mvccpb.KeyValue, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv
	}
	return out
}

// diffKVs reports every key whose presence, value, revisions, version or
// lease differ between want and got (at most 10 of them, then a count).
func diffKVs(t *testing.T, who string, want, got map[string]*mvccpb.KeyValue) {
	t.Helper()
	var diffs int
	report := func(format string, args ...any) {
		diffs++
		if diffs <= 10 {
			t.Errorf(who+": "+format, args...)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			report("key %s missing after restart", k)
		case string(g.Value) != string(w.Value) || g.CreateRevision != w.CreateRevision ||
			g.ModRevision != w.ModRevision || g.Version != w.Version || g.Lease != w.Lease:
			report("key %s = {value %q create %d mod %d version %d lease %d}, want {%q %d %d %d %d}",
				k, g.Value, g.CreateRevision, g.ModRevision, g.Version, g.Lease,
				w.Value, w.CreateRevision, w.ModRevision, w.Version, w.Lease)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			report("key %s appeared after restart", k)
		}
	}
	if diffs > 0 {
		t.Errorf("%s: %d keys differ after restart (of %d)", who, diffs, len(want))
	}
}

// waitFor polls cond every 10 ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
