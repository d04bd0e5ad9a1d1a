package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
)

// TestBarrierReleasesAllAtOnce: no waiter passes while the barrier is up,
// and all pass once it is released.
func TestBarrierReleasesAllAtOnce(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/barrier")
	eps := cluster.Endpoints()
	const name, waiters = "recipes/barrier", 6
	b := recipes.NewBarrier(sessiontest.Client(t, eps...), name)
	if err := b.Hold(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Hold(t.Context()); !errors.Is(err, recipes.ErrBarrierHeld) {
		t.Fatalf("second Hold = %v, want ErrBarrierHeld", err)
	}
	var released atomic.Bool
	passed := make(chan bool, waiters)
	for i := range waiters {
		w := recipes.NewBarrier(sessiontest.Client(t, eps[i%len(eps)]), name)
		go func() {
			if err := w.Wait(t.Context()); err != nil {
				t.Error(err)
			}
			passed <- released.Load()
		}()
	}
	select {
	case <-passed:
		t.Fatal("a waiter passed a raised barrier")
	case <-time.After(300 * time.Millisecond):
	}
	released.Store(true)
	start := time.Now()
	if err := b.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range waiters {
		select {
		case after := <-passed:
			if !after {
				t.Fatal("a waiter passed before the release")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a waiter still waits after the release")
		}
	}
	t.Logf("all %d waiters passed within %v of the release", waiters, time.Since(start))
	if err := b.Wait(t.Context()); err != nil {
		t.Fatalf("Wait on a lowered barrier: %v", err)
	}
}

// doubleRound runs one round of a double barrier with the given
// participants: nobody leaves Enter before all have entered, nobody leaves
// Leave before all have left.
func doubleRound(t *testing.T, sessions []*session.Session, name string, count int) {
	t.Helper()
	var entering, entered, leaving atomic.Int64
	var wg sync.WaitGroup
	for p := range count {
		b := recipes.NewDoubleBarrier(sessions[p%len(sessions)], name, count)
		wg.Go(func() {
			time.Sleep(time.Duration(p) * 20 * time.Millisecond) // arrive one by one
			entering.Add(1)
			if err := b.Enter(t.Context()); err != nil {
				t.Errorf("participant %d: enter: %v", p, err)
				return
			}
			if n := entering.Load(); n != int64(count) {
				t.Errorf("participant %d passed Enter with %d of %d entering", p, n, count)
			}
			entered.Add(1)
			time.Sleep(time.Duration(count-p) * 20 * time.Millisecond) // leave in another order
			leaving.Add(1)
			if err := b.Leave(t.Context()); err != nil {
				t.Errorf("participant %d: leave: %v", p, err)
				return
			}
			if n := leaving.Load(); n != int64(count) {
				t.Errorf("participant %d passed Leave with %d of %d leaving", p, n, count)
			}
		})
	}
	wg.Wait()
	if entered.Load() != int64(count) {
		t.Fatalf("%d entered, want %d", entered.Load(), count)
	}
}

func TestDoubleBarrier(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/double")
	var sessions []*session.Session
	for _, ep := range cluster.Endpoints() {
		sessions = append(sessions, sessiontest.NewSession(t, sessiontest.Client(t, ep), 10*time.Second))
	}
	const name, count = "recipes/double", 5
	for round := range 2 { // the barrier is reusable
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) { doubleRound(t, sessions, name, count) })
	}
	if n := keyCount(t, sessions[0].Client(), name+"/"); n != 0 {
		t.Fatalf("%d keys left after the rounds", n)
	}
}

// TestDoubleBarrierFullAndDropout: a participant beyond the count is
// refused, and one whose session ends while entering drops out, its place
// taken by another.
func TestDoubleBarrierFullAndDropout(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/double-full")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name, count = "recipes/double-full", 3
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	doomed := sessiontest.NewSession(t, cli, 10*time.Second)
	errs := make(chan error, count+1)
	enter := func(s *session.Session) *recipes.DoubleBarrier {
		b := recipes.NewDoubleBarrier(s, name, count)
		go func() { errs <- b.Enter(t.Context()) }()
		return b
	}
	first := enter(s)
	enter(doomed)
	waitKeys(t, cli, name+"/waiters/", 2)
	doomed.Close(t.Context())
	select {
	case err := <-errs:
		if !errors.Is(err, recipes.ErrLost) {
			t.Fatalf("Enter of a closed session = %v, want ErrLost", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Enter of a closed session still waits")
	}
	waitKeys(t, cli, name+"/waiters/", 1)
	second, third := enter(s), enter(s)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := recipes.NewDoubleBarrier(s, name, count).Enter(t.Context()); !errors.Is(err, recipes.ErrBarrierFull) {
		t.Fatalf("Enter of a released round = %v, want ErrBarrierFull", err)
	}
	var wg sync.WaitGroup
	for _, b := range []*recipes.DoubleBarrier{first, second, third} {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := b.Leave(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitKeys(t, cli, name+"/", 0)
}

// TestDoubleBarrierSharedLeaseDropout: two participants sharing a lease
// drop out together (both keys go in one revision); a waiting participant
// counts both departures, so the round is released only once count
// participants are really in.
func TestDoubleBarrierSharedLeaseDropout(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/double-shared")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name, count = "recipes/double-shared", 4
	errs := make(chan error, 8)
	enter := func(s *session.Session) {
		b := recipes.NewDoubleBarrier(s, name, count)
		go func() { errs <- b.Enter(t.Context()) }()
	}
	enter(sessiontest.NewSession(t, cli, 10*time.Second)) // the watcher
	waitKeys(t, cli, name+"/waiters/", 1)
	shared := sessiontest.NewSession(t, cli, 10*time.Second)
	enter(shared)
	enter(shared)
	waitKeys(t, cli, name+"/waiters/", 3)
	if _, err := cli.Revoke(t.Context(), shared.Lease()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, recipes.ErrLost) {
			t.Fatalf("Enter on a revoked lease = %v, want ErrLost", err)
		}
	}
	// Three really in: not a round yet.
	enter(sessiontest.NewSession(t, cli, 10*time.Second))
	enter(sessiontest.NewSession(t, cli, 10*time.Second))
	waitKeys(t, cli, name+"/waiters/", 3)
	select {
	case err := <-errs:
		t.Fatalf("Enter returned with 3 of %d participants in: %v", count, err)
	case <-time.After(time.Second):
	}
	if n := keyCount(t, cli, name+"/ready"); n != 0 {
		t.Fatalf("round released with 3 of %d participants in", count)
	}
	enter(sessiontest.NewSession(t, cli, 10*time.Second))
	for range count {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
