package lock_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session/sessiontest"
)

func TestRWMutexReadersShareWritersExclude(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/rw-basic")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "lock/rw-basic"
	r1, r2, w := lock.NewRWMutex(s, name), lock.NewRWMutex(s, name), lock.NewRWMutex(s, name)
	if _, err := r1.RLock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.TryRLock(t.Context()); err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if _, err := w.TryLock(t.Context()); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("writer TryLock with readers in = %v, want ErrLocked", err)
	}
	if err := r1.Unlock(t.Context()); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Unlock of a read hold = %v, want ErrNotHeld", err)
	}
	for _, r := range []*lock.RWMutex{r1, r2} {
		if err := r.RUnlock(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := w.TryLock(t.Context())
	if err != nil {
		t.Fatalf("writer TryLock on a free lock: %v", err)
	}
	if _, err := r1.TryRLock(t.Context()); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("reader TryRLock under a writer = %v, want ErrLocked", err)
	}
	if err := w.RUnlock(t.Context()); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("RUnlock of a write hold = %v, want ErrNotHeld", err)
	}
	if err := w.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok2, err := w.Lock(t.Context())
	if err != nil || tok2 <= tok {
		t.Fatalf("second write hold = %d, %v; want a token above %d", tok2, err, tok)
	}
	if err := w.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestRWMutexWriterNotStarved: a reader arriving after a waiting writer
// waits for that writer, even though the lock is only read-held.
func TestRWMutexWriterNotStarved(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/rw-starve")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "lock/rw-starve"
	first := lock.NewRWMutex(s, name)
	if _, err := first.RLock(t.Context()); err != nil {
		t.Fatal(err)
	}
	events := make(chan string, 2)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // on failure: after t.Context() is cancelled
	w := lock.NewRWMutex(s, name)
	wg.Go(func() {
		if _, err := w.Lock(t.Context()); err != nil {
			t.Error(err)
			return
		}
		events <- "writer"
		time.Sleep(100 * time.Millisecond) // a reader that skipped the queue would get in now
		if err := w.Unlock(t.Context()); err != nil {
			t.Error(err)
		}
	})
	waitKeys(t, cli, name+"/", 2)
	late := lock.NewRWMutex(s, name)
	wg.Go(func() {
		if _, err := late.RLock(t.Context()); err != nil {
			t.Error(err)
			return
		}
		events <- "late reader"
		if err := late.RUnlock(t.Context()); err != nil {
			t.Error(err)
		}
	})
	waitKeys(t, cli, name+"/", 3)
	select {
	case e := <-events:
		t.Fatalf("%s got in while the first reader still holds", e)
	case <-time.After(200 * time.Millisecond):
	}
	if err := first.RUnlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"writer", "late reader"} {
		select {
		case got := <-events:
			if got != want {
				t.Fatalf("got %s, want %s next", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s never got in", want)
		}
	}
	wg.Wait()
}

// TestRWMutexConcurrent: readers and writers at random; a writer is always
// alone, and readers do overlap.
func TestRWMutexConcurrent(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/rw-concurrent")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name, participants, rounds = "lock/rw-concurrent", 8, 10
	var readers, writers, maxReaders atomic.Int32
	var tokensMu sync.Mutex // the race detector cannot see the lock's exclusion
	var writeTokens []lock.Token
	var wg sync.WaitGroup
	for p := range participants {
		rw := lock.NewRWMutex(s, name)
		wg.Go(func() {
			for i := range rounds {
				if (p+i)%4 == 0 {
					tok, err := rw.Lock(t.Context())
					if err != nil {
						t.Error(err)
						return
					}
					if w, r := writers.Add(1), readers.Load(); w != 1 || r != 0 {
						t.Errorf("writer in with %d writers and %d readers", w, r)
					}
					tokensMu.Lock()
					writeTokens = append(writeTokens, tok)
					tokensMu.Unlock()
					time.Sleep(5 * time.Millisecond)
					writers.Add(-1)
					if err := rw.Unlock(t.Context()); err != nil {
						t.Error(err)
						return
					}
				} else {
					if _, err := rw.RLock(t.Context()); err != nil {
						t.Error(err)
						return
					}
					n := readers.Add(1)
					if w := writers.Load(); w != 0 {
						t.Errorf("reader in with %d writers", w)
					}
					for m := maxReaders.Load(); n > m && !maxReaders.CompareAndSwap(m, n); m = maxReaders.Load() {
					}
					time.Sleep(20 * time.Millisecond)
					readers.Add(-1)
					if err := rw.RUnlock(t.Context()); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if maxReaders.Load() < 2 {
		t.Errorf("readers never overlapped (max %d at once)", maxReaders.Load())
	}
	if err := strictlyIncreasing(writeTokens); err != nil {
		t.Errorf("write tokens: %v", err)
	}
	t.Logf("up to %d readers at once; %d write holds", maxReaders.Load(), len(writeTokens))
}
