package backend_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/core/backend"
)

const testBucket backend.Bucket = "test"

func openTest(t testing.TB, path string, mod ...func(*backend.Config)) *backend.Backend {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "db")
	}
	cfg := backend.DefaultConfig(path)
	for _, m := range mod {
		m(&cfg)
	}
	b, err := backend.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustGet(t *testing.T, b *backend.Backend, key string) (string, bool) {
	t.Helper()
	v, ok, err := b.Get(testBucket, []byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(v), ok
}

func rangeAll(t *testing.T, b *backend.Backend, start, end string, limit int) []string {
	t.Helper()
	var s, e []byte
	if start != "" {
		s = []byte(start)
	}
	if end != "" {
		e = []byte(end)
	}
	kvs, err := b.Range(testBucket, s, e, limit)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, string(kv.Key)+"="+string(kv.Value))
	}
	return out
}

func TestConfigValidate(t *testing.T) {
	good := backend.DefaultConfig("x")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*backend.Config){
		"no path":     func(c *backend.Config) { c.Path = "" },
		"no interval": func(c *backend.Config) { c.BatchInterval = 0 },
		"no limit":    func(c *backend.Config) { c.BatchLimit = 0 },
		"mmap":        func(c *backend.Config) { c.InitialMmapSize = -1 },
		"logger":      func(c *backend.Config) { c.Logger = nil },
	} {
		c := good
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: Validate accepted a bad config", name)
		}
	}
}

func TestReadOwnWritesAcrossLayers(t *testing.T) {
	b := openTest(t, "")
	defer b.Close()

	// Committed layer: a, b, c, d.
	for _, k := range []string{"a", "b", "c", "d"} {
		b.Put(testBucket, []byte(k), []byte("bolt-"+k))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	// Flushing layer: overwrite b, delete c, add e.
	b.Put(testBucket, []byte("b"), []byte("flush-b"))
	b.Delete(testBucket, []byte("c"))
	b.Put(testBucket, []byte("e"), []byte("flush-e"))
	if !b.SwapWithoutCommit() {
		t.Fatal("swap refused")
	}
	// Pending layer: re-add c, delete e, delete a, add f.
	b.Put(testBucket, []byte("c"), []byte("pend-c"))
	b.Delete(testBucket, []byte("e"))
	b.Delete(testBucket, []byte("a"))
	b.Put(testBucket, []byte("f"), []byte("pend-f"))

	want := []string{"b=flush-b", "c=pend-c", "d=bolt-d", "f=pend-f"}
	check := func(stage string) {
		t.Helper()
		if got := rangeAll(t, b, "", "", 0); !slices.Equal(got, want) {
			t.Fatalf("%s: range = %v, want %v", stage, got, want)
		}
		if got := rangeAll(t, b, "b", "e", 0); !slices.Equal(got, want[:3]) {
			t.Fatalf("%s: range [b,e) = %v", stage, got)
		}
		if got := rangeAll(t, b, "", "", 2); !slices.Equal(got, want[:2]) {
			t.Fatalf("%s: range limit 2 = %v", stage, got)
		}
		for _, k := range []string{"a", "e"} {
			if v, ok := mustGet(t, b, k); ok {
				t.Fatalf("%s: deleted key %s visible with %q", stage, k, v)
			}
		}
		if v, _ := mustGet(t, b, "b"); v != "flush-b" {
			t.Fatalf("%s: b = %q", stage, v)
		}
	}
	check("three layers")
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	check("after commit")
}

func TestCloseReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b := openTest(t, path)
	for i := range 100 {
		b.Put(testBucket, fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "v%d", i))
		b.SetConsistentIndex(uint64(i+1), 7)
	}
	b.Delete(testBucket, []byte("k050"))
	b.SetConsistentIndex(101, 8)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != backend.ErrClosed {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, _, err := b.Get(testBucket, []byte("k001")); err != backend.ErrClosed {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}

	b = openTest(t, path)
	defer b.Close()
	if idx, term := b.ConsistentIndex(); idx != 101 || term != 8 {
		t.Fatalf("ConsistentIndex = %d/%d, want 101/8", idx, term)
	}
	if got := rangeAll(t, b, "", "", 0); len(got) != 99 {
		t.Fatalf("reopened with %d keys, want 99", len(got))
	}
	if v, _ := mustGet(t, b, "k099"); v != "v99" {
		t.Fatalf("k099 = %q", v)
	}
}

func TestCrashLosesOnlyUncommittedAndIndexAgrees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	// A long interval: only explicit flushes commit.
	b := openTest(t, path, func(c *backend.Config) { c.BatchInterval = time.Hour })
	b.Put(testBucket, []byte("e1"), []byte("x"))
	b.SetConsistentIndex(1, 1)
	b.Put(testBucket, []byte("e2"), []byte("x"))
	b.SetConsistentIndex(2, 1)
	if err := b.FlushNow(); err != nil { // commits entries 1 and 2
		t.Fatal(err)
	}
	// Entry 3 is applied completely; entry 4 only half (no index yet).
	b.Put(testBucket, []byte("e3"), []byte("x"))
	b.SetConsistentIndex(3, 1)
	b.Put(testBucket, []byte("e4a"), []byte("x"))
	// The flusher must not commit entry 4's half: it defers to the next
	// SetConsistentIndex, so nothing is committed here.
	if err := b.FlushNow(); err != nil {
		t.Fatal(err)
	}
	if err := b.Abandon(); err != nil {
		t.Fatal(err)
	}

	b = openTest(t, path)
	idx, _ := b.ConsistentIndex()
	if idx != 2 {
		t.Fatalf("after crash ConsistentIndex = %d, want 2", idx)
	}
	got := rangeAll(t, b, "", "", 0)
	if want := []string{"e1=x", "e2=x"}; !slices.Equal(got, want) {
		t.Fatalf("after crash data = %v, want %v (data must match index)", got, want)
	}
	// Now the sealed-flush path: the flusher asks, SetConsistentIndex swaps.
	b.Put(testBucket, []byte("e3"), []byte("x"))
	b.SetConsistentIndex(3, 1)
	b.Put(testBucket, []byte("e4a"), []byte("x"))
	if err := b.FlushNow(); err != nil { // mid-entry: only registers the wish
		t.Fatal(err)
	}
	b.Put(testBucket, []byte("e4b"), []byte("x"))
	b.SetConsistentIndex(4, 1) // swaps entries 3..4 to the flusher
	if err := b.FlushNow(); err != nil {
		t.Fatal(err)
	}
	b.Put(testBucket, []byte("e5a"), []byte("x")) // never sealed
	if err := b.Abandon(); err != nil {
		t.Fatal(err)
	}
	b = openTest(t, path)
	defer b.Close()
	if idx, _ := b.ConsistentIndex(); idx != 4 {
		t.Fatalf("ConsistentIndex = %d, want 4", idx)
	}
	if got, want := rangeAll(t, b, "", "", 0), []string{"e1=x", "e2=x", "e3=x", "e4a=x", "e4b=x"}; !slices.Equal(got, want) {
		t.Fatalf("data = %v, want %v", got, want)
	}
}

func TestFlusherCommitsInBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	b := openTest(t, path, func(c *backend.Config) { c.BatchInterval = time.Millisecond; c.BatchLimit = 10 })
	for i := range 50 {
		b.Put(testBucket, fmt.Appendf(nil, "k%02d", i), []byte("v"))
	}
	b.SetConsistentIndex(50, 1)
	// Poll (bounded, no fixed sleep) until the flusher has committed all.
	deadline := time.Now().Add(10 * time.Second)
	for b.BufferedOps() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("flusher never committed the writes")
		}
		time.Sleep(time.Millisecond)
	}
	if err := b.Abandon(); err != nil { // no final commit
		t.Fatal(err)
	}
	b = openTest(t, path)
	defer b.Close()
	if idx, _ := b.ConsistentIndex(); idx != 50 {
		t.Fatalf("ConsistentIndex = %d, want 50", idx)
	}
	if got := rangeAll(t, b, "", "", 0); len(got) != 50 {
		t.Fatalf("%d keys committed by the flusher, want 50", len(got))
	}
}

func TestSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	b := openTest(t, filepath.Join(dir, "a"))
	for i := range 1000 {
		b.Put(testBucket, fmt.Appendf(nil, "k%04d", i), bytes.Repeat([]byte{byte(i)}, 100))
	}
	b.SetConsistentIndex(42, 3)
	var buf bytes.Buffer
	n, err := b.Snapshot(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("Snapshot n=%d len=%d err=%v", n, buf.Len(), err)
	}
	hashA, err := b.Hash()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Replace another node's file with the snapshot.
	target := filepath.Join(dir, "b")
	other := openTest(t, target)
	other.Put(testBucket, []byte("stale"), []byte("x"))
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.WriteSnapshotFile(target, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	restored := openTest(t, target)
	defer restored.Close()
	if idx, term := restored.ConsistentIndex(); idx != 42 || term != 3 {
		t.Fatalf("restored index %d/%d", idx, term)
	}
	hashB, err := restored.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if hashA != hashB {
		t.Fatalf("hash after restore %x != %x", hashB, hashA)
	}
	if _, ok := mustGet(t, restored, "stale"); ok {
		t.Fatal("stale key survived the restore")
	}
	// Garbage is refused and leaves the target untouched.
	if _, err := backend.WriteSnapshotFile(target+"x", bytes.NewReader([]byte("not a db"))); err == nil {
		t.Fatal("WriteSnapshotFile accepted garbage")
	}
	if _, err := os.Stat(target + "x"); !os.IsNotExist(err) {
		t.Fatalf("garbage snapshot left a file behind: %v", err)
	}
}

func TestHashDiffers(t *testing.T) {
	a, b := openTest(t, ""), openTest(t, "")
	defer a.Close()
	defer b.Close()
	for _, be := range []*backend.Backend{a, b} {
		be.Put(testBucket, []byte("k"), []byte("v"))
	}
	if err := a.Commit(); err != nil { // committed vs buffered must not matter
		t.Fatal(err)
	}
	ha, _ := a.Hash()
	hb, _ := b.Hash()
	if ha != hb {
		t.Fatalf("equal content, hashes %x %x", ha, hb)
	}
	b.Put(testBucket, []byte("k"), []byte("w"))
	hb, _ = b.Hash()
	if ha == hb {
		t.Fatal("different content, equal hashes")
	}
}

func TestDefrag(t *testing.T) {
	b := openTest(t, "")
	defer b.Close()
	val := bytes.Repeat([]byte("x"), 1000)
	for i := range 5000 {
		b.Put(testBucket, fmt.Appendf(nil, "k%05d", i), val)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		if i%10 != 0 {
			b.Delete(testBucket, fmt.Appendf(nil, "k%05d", i))
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	before, _ := b.Size()
	hashBefore, _ := b.Hash()

	// Readers and a writer keep going during the defrag.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, ok, err := b.Get(testBucket, []byte("k00010")); err != nil || !ok {
					t.Errorf("read during defrag: ok=%v err=%v", ok, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	b.Put(testBucket, []byte("during"), []byte("x"))
	if err := b.Defrag(t.Context()); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	after, _ := b.Size()
	if after >= before/2 {
		t.Fatalf("defrag: size %d -> %d, expected to shrink", before, after)
	}
	b.Delete(testBucket, []byte("during"))
	if h, _ := b.Hash(); h != hashBefore {
		t.Fatal("content changed across defrag")
	}
	if err := b.Commit(); err != nil {
		t.Fatalf("commit after defrag: %v", err)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads ran during defrag")
	}
}

// TestRandomizedAgainstMap drives random puts, deletes, flushes and
// partial swaps and compares every read with a plain map.
func TestRandomizedAgainstMap(t *testing.T) {
	b := openTest(t, "", func(c *backend.Config) { c.BatchInterval = time.Hour })
	defer b.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]string{}
	for step := range 3000 {
		k := fmt.Sprintf("k%02d", rng.IntN(60))
		switch r := rng.IntN(100); {
		case r < 55:
			v := fmt.Sprintf("v%d", step)
			b.Put(testBucket, []byte(k), []byte(v))
			model[k] = v
		case r < 85:
			b.Delete(testBucket, []byte(k))
			delete(model, k)
		case r < 90:
			b.SwapWithoutCommit()
		case r < 95:
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		default:
			lo := fmt.Sprintf("k%02d", rng.IntN(60))
			hi := fmt.Sprintf("k%02d", rng.IntN(60))
			limit := rng.IntN(5)
			got := rangeAll(t, b, lo, hi, limit)
			var want []string
			for _, mk := range slices.Sorted(maps.Keys(model)) {
				if mk >= lo && mk < hi && (limit == 0 || len(want) < limit) {
					want = append(want, mk+"="+model[mk])
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d range [%s,%s) limit %d = %v, want %v", step, lo, hi, limit, got, want)
			}
		}
		if v, ok := mustGet(t, b, k); ok != (model[k] != "") || v != model[k] {
			t.Fatalf("step %d get %s = %q,%v want %q", step, k, v, ok, model[k])
		}
	}
}

// TestConcurrentReadersSeeConsistentPrefix: the writer puts k0, k1, ...
// in order while the flusher commits every few writes; every view must
// see a gap-free prefix (a view never mixes two moments).
func TestConcurrentReadersSeeConsistentPrefix(t *testing.T) {
	b := openTest(t, "", func(c *backend.Config) { c.BatchInterval = time.Millisecond; c.BatchLimit = 50 })
	defer b.Close()
	const total = 5000
	var written atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for written.Load() < total {
				err := b.Read(func(v *backend.ReadView) error {
					n := 0
					for k := range v.Range(testBucket, nil, nil, 0) {
						if want := fmt.Sprintf("k%06d", n); string(k) != want {
							return fmt.Errorf("view has %s where %s was expected", k, want)
						}
						n++
					}
					if int64(n) > written.Load() {
						return fmt.Errorf("view sees %d keys, only %d written", n, written.Load())
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range total {
		// Count before writing: a reader may see the put as soon as it is
		// made, and must never see more keys than counted.
		written.Add(1)
		b.Put(testBucket, fmt.Appendf(nil, "k%06d", i), []byte("v"))
		if i%7 == 0 {
			b.SetConsistentIndex(uint64(i), 1)
		}
	}
	wg.Wait()
}
