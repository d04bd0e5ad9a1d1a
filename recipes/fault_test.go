package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
)

// scale returns n, or a third of it in -short mode.
func scale(n int) int {
	if testing.Short() {
		return max(n/3, 2)
	}
	return n
}

// TestMemberKilled kills (and restarts) a member of a three-member cluster
// in the middle of each recipe's work; every recipe keeps its invariant.
func TestMemberKilled(t *testing.T) {
	c := testcluster.Start(t, 3)
	eps := c.Endpoints()
	// kill kills member i until restart(i) or the end of the subtest, so
	// that a failed subtest does not leave the next without a quorum.
	var dead sync.Map // member index -> true
	restart := func(t *testing.T, i int) {
		t.Helper()
		if _, was := dead.LoadAndDelete(i); was {
			c.Restart(i)
			c.WaitReady(30 * time.Second)
		}
	}
	kill := func(t *testing.T, i int) {
		dead.Store(i, true)
		c.Kill(i)
		t.Cleanup(func() { restart(t, i) })
	}
	// retry retries op until it succeeds, as a caller must across a kill;
	// only for operations that may be repeated.
	retry := func(t *testing.T, what string, op func(context.Context) error) {
		t.Helper()
		for {
			err := op(t.Context())
			if err == nil {
				return
			}
			if t.Context().Err() != nil {
				t.Errorf("%s: %v", what, err)
				return
			}
			t.Logf("%s (retried): %v", what, err)
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("Semaphore", func(t *testing.T) {
		sessions := []*session.Session{
			sessiontest.NewSession(t, sessiontest.Client(t, eps...), 10*time.Second),
			sessiontest.NewSession(t, sessiontest.Client(t, eps...), 10*time.Second),
		}
		const limit, participants = 2, 6
		rounds := scale(12)
		h, done := churn(t, sessions, "recipes/kill-sem", limit, participants, rounds, true, func() { kill(t, 1) })
		restart(t, 1)
		if done != int64(participants*rounds) || h.max.Load() > limit {
			t.Fatalf("%d rounds done (want %d), at most %d holders (limit %d)", done, participants*rounds, h.max.Load(), limit)
		}
	})

	t.Run("Queue", func(t *testing.T) {
		const name, producers, consumers = "recipes/kill-queue", 2, 2
		perProducer := scale(40)
		// Producers and consumers run together; a member dies halfway
		// through production. An enqueue or dequeue that fails may have
		// been applied: the item then appears twice (enqueue retried) or
		// is lost (claimed, the answer lost). Attempts and failures are
		// counted to bound both.
		var mu sync.Mutex // guards attempts and got
		attempts := map[string]int{}
		got := make([][]string, consumers)
		var dequeueErrs atomic.Int64
		var producing, consuming sync.WaitGroup
		halfway := make(chan struct{})
		var once sync.Once
		for p := range producers {
			q := recipes.NewQueue(sessiontest.Client(t, eps...), name)
			producing.Go(func() {
				for i := 0; i < perProducer; {
					v := fmt.Sprintf("p%d-%d", p, i)
					mu.Lock()
					attempts[v]++
					mu.Unlock()
					if err := q.Enqueue(t.Context(), v); err != nil {
						t.Logf("enqueue %s (retried): %v", v, err)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					if i++; i == perProducer/2 {
						once.Do(func() { close(halfway) })
					}
				}
			})
		}
		var produced atomic.Bool
		for c := range consumers {
			q := recipes.NewQueue(sessiontest.Client(t, eps...), name)
			consuming.Go(func() {
				for {
					ctx, cancel := context.WithTimeout(t.Context(), time.Second)
					v, err := q.Dequeue(ctx)
					cancel()
					switch {
					case err == nil:
						mu.Lock()
						got[c] = append(got[c], v)
						mu.Unlock()
					case errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "claim"):
						if produced.Load() { // empty for a second, and nothing more is coming
							return
						}
					case t.Context().Err() != nil:
						return
					default:
						dequeueErrs.Add(1) // a claim whose answer was lost
						t.Logf("dequeue (retried): %v", err)
					}
				}
			})
		}
		<-halfway
		kill(t, 2)
		producing.Wait()
		produced.Store(true)
		consuming.Wait()
		restart(t, 2)

		seen := map[string]int{}
		for _, vs := range got {
			for _, v := range vs {
				seen[v]++
			}
		}
		missing, enqueued := 0, 0
		for v, n := range attempts {
			enqueued += n
			if seen[v] == 0 {
				missing++
			}
			if seen[v] > n {
				t.Errorf("%s dequeued %d times after %d enqueue attempts", v, seen[v], n)
			}
		}
		if int64(missing) > dequeueErrs.Load() {
			t.Errorf("%d items never dequeued, with %d failed dequeues", missing, dequeueErrs.Load())
		}
		if enqueued == producers*perProducer && dequeueErrs.Load() == 0 {
			checkExactlyOnce(t, got, producers, perProducer)
		}
		t.Logf("%d enqueue attempts for %d items, %d failed dequeues", enqueued, producers*perProducer, dequeueErrs.Load())
	})

	t.Run("Counter", func(t *testing.T) {
		const goroutines = 4
		adds := scale(15)
		var succeeded, failed atomic.Int64
		var wg sync.WaitGroup
		halfway := make(chan struct{})
		var once sync.Once
		for range goroutines {
			ctr := recipes.NewCounter(sessiontest.Client(t, eps...), "recipes/kill-counter")
			wg.Go(func() {
				for range adds {
					if _, err := ctr.Add(t.Context(), 1); err != nil {
						failed.Add(1) // may or may not have been applied
						continue
					}
					if succeeded.Add(1) == int64(goroutines*adds/2) {
						once.Do(func() { close(halfway) })
					}
				}
			})
		}
		<-halfway
		kill(t, 0)
		wg.Wait()
		restart(t, 0)
		v, err := recipes.NewCounter(sessiontest.Client(t, eps...), "recipes/kill-counter").Get(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if v < succeeded.Load() || v > succeeded.Load()+failed.Load() {
			t.Fatalf("counter %d after %d successful and %d failed adds", v, succeeded.Load(), failed.Load())
		}
		if failed.Load() == 0 && v != int64(goroutines*adds) {
			t.Fatalf("counter %d, want %d", v, goroutines*adds)
		}
	})

	t.Run("Barrier", func(t *testing.T) {
		const name = "recipes/kill-barrier"
		b := recipes.NewBarrier(sessiontest.Client(t, eps...), name)
		if err := b.Hold(t.Context()); err != nil {
			t.Fatal(err)
		}
		var released atomic.Bool
		passed := make(chan bool, 4)
		// Three waiters can reach a live member; one knows only member 1.
		for i, ep := range [][]string{eps, eps, eps, {eps[1]}} {
			w := recipes.NewBarrier(sessiontest.Client(t, ep...), name)
			go func() {
				if err := w.Wait(t.Context()); err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
				passed <- released.Load()
			}()
		}
		time.Sleep(200 * time.Millisecond) // let the waiters start watching
		kill(t, 1)
		released.Store(true)
		retry(t, "release", b.Release)
		for range 3 {
			if !<-passed {
				t.Fatal("a waiter passed before the release")
			}
		}
		restart(t, 1)
		select { // the cut-off waiter catches up from its revision
		case after := <-passed:
			if !after {
				t.Fatal("the cut-off waiter passed before the release")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the waiter of the restarted member never passed")
		}
	})

	t.Run("DoubleBarrier", func(t *testing.T) {
		const name, count = "recipes/kill-double", 3
		var entering, leaving atomic.Int64
		var wg sync.WaitGroup
		killed := make(chan struct{})
		for p := range count {
			b := recipes.NewDoubleBarrier(sessiontest.NewSession(t, sessiontest.Client(t, eps...), 10*time.Second), name, count)
			wg.Go(func() {
				if p == count-1 {
					<-killed // the last enters after the kill
				}
				entering.Add(1)
				retry(t, fmt.Sprintf("participant %d: enter", p), b.Enter)
				if n := entering.Load(); n != count {
					t.Errorf("passed Enter with %d entering", n)
				}
				leaving.Add(1)
				retry(t, fmt.Sprintf("participant %d: leave", p), b.Leave)
				if n := leaving.Load(); n != count {
					t.Errorf("passed Leave with %d leaving", n)
				}
			})
		}
		waitKeys(t, sessiontest.Client(t, eps...), name+"/waiters/", count-1)
		kill(t, 2)
		close(killed)
		wg.Wait()
		restart(t, 2)
	})

	t.Run("Group", func(t *testing.T) {
		const name = "recipes/kill-group"
		g := recipes.NewGroup(sessiontest.Client(t, eps...), name)
		w := viewer{g.Watch(t.Context())}
		w.expect(t, nil, nil, nil, nil)
		if _, err := g.Join(t.Context(), sessiontest.NewSession(t, sessiontest.Client(t, eps...), 10*time.Second), "steady", ""); err != nil {
			t.Fatal(err)
		}
		w.expect(t, []string{"steady"}, []string{"steady"}, nil, nil)
		cut := sessiontest.NewSession(t, sessiontest.Client(t, eps[0]), sessiontest.MinTTL)
		m, err := g.Join(t.Context(), cut, "cut-off", "")
		if err != nil {
			t.Fatal(err)
		}
		w.expect(t, []string{"cut-off", "steady"}, []string{"cut-off"}, nil, nil)
		killedAt := time.Now()
		kill(t, 0)
		select {
		case <-m.Done():
			t.Logf("cut-off member's Done after %v: %v", time.Since(killedAt), m.Err())
		case <-time.After(sessiontest.MinTTL + time.Second):
			t.Fatal("member cut off from the cluster still believes it is a member")
		}
		w.expect(t, []string{"steady"}, nil, nil, []string{"cut-off"})
		restart(t, 0)
		if _, err := g.Join(t.Context(), sessiontest.NewSession(t, sessiontest.Client(t, eps[0]), sessiontest.MinTTL), "cut-off", "back"); err != nil {
			t.Fatal(err)
		}
		w.expect(t, []string{"cut-off", "steady"}, []string{"cut-off"}, nil, nil)
	})
}
