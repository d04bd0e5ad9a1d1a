package recipes_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// holders counts the participants inside a semaphore and the most at once.
type holders struct {
	in, max atomic.Int64
}

func (h *holders) enter() int64 {
	n := h.in.Add(1)
	for m := h.max.Load(); n > m && !h.max.CompareAndSwap(m, n); m = h.max.Load() {
	}
	return n
}

func (h *holders) leave() { h.in.Add(-1) }

// churn has participants acquire and release a semaphore rounds times each,
// checking that no more than limit are inside at once. Acquire errors are
// retried when retry is set (fault tests); counts successful rounds.
// halfway, if not nil, is called once half the rounds are done.
func churn(t *testing.T, sessions []*session.Session, name string, limit, participants, rounds int, retry bool, halfway func()) (*holders, int64) {
	t.Helper()
	var h holders
	var done atomic.Int64
	var wg sync.WaitGroup
	for p := range participants {
		s := sessions[p%len(sessions)]
		sem := recipes.NewSemaphore(s, name, limit)
		wg.Go(func() {
			for i := 0; i < rounds; {
				if err := sem.Acquire(t.Context()); err != nil {
					if retry && t.Context().Err() == nil {
						time.Sleep(50 * time.Millisecond)
						continue
					}
					t.Errorf("participant %d: %v", p, err)
					return
				}
				if n := h.enter(); n > int64(limit) {
					t.Errorf("%d holders of a semaphore of %d", n, limit)
				}
				time.Sleep(10 * time.Millisecond)
				h.leave()
				for sem.Release(t.Context()) != nil && sem.Err() == nil {
					if !retry {
						t.Errorf("participant %d: release failed", p)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				i++
				if done.Add(1) == int64(participants*rounds/2) && halfway != nil {
					halfway()
				}
			}
		})
	}
	wg.Wait()
	return &h, done.Load()
}

func TestSemaphoreLimit(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/sem-limit")
	var sessions []*session.Session
	for _, ep := range cluster.Endpoints() {
		sessions = append(sessions, sessiontest.NewSession(t, sessiontest.Client(t, ep), 10*time.Second))
	}
	const name, limit, participants, rounds = "recipes/sem-limit", 3, 10, 5
	h, done := churn(t, sessions, name, limit, participants, rounds, false, nil)
	if done != participants*rounds {
		t.Errorf("%d rounds done, want %d", done, participants*rounds)
	}
	// The limit is never exceeded (checked inside churn); whether it is
	// reached here depends on timing (TestSemaphoreTryAcquireAndFencing
	// fills a semaphore deterministically).
	t.Logf("up to %d of %d permits held at once", h.max.Load(), limit)
	if n := keyCount(t, sessions[0].Client(), name+"/"); n != 0 {
		t.Errorf("%d keys left", n)
	}
}

func TestSemaphoreTryAcquireAndFencing(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/sem-try")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "recipes/sem-try"
	a, b, c := recipes.NewSemaphore(s, name, 2), recipes.NewSemaphore(s, name, 2), recipes.NewSemaphore(s, name, 2)
	for _, sem := range []*recipes.Semaphore{a, b} {
		if err := sem.TryAcquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.TryAcquire(t.Context()); !errors.Is(err, recipes.ErrNoPermit) {
		t.Fatalf("third TryAcquire of 2 permits = %v, want ErrNoPermit", err)
	}
	if err := a.Acquire(t.Context()); !errors.Is(err, recipes.ErrInUse) {
		t.Fatalf("Acquire while holding = %v, want ErrInUse", err)
	}
	if resp, err := cli.Txn(t.Context()).If(a.IsHolder()).Then(clientv3.OpPut("recipes/sem-try-data", "x")).Commit(); err != nil || !resp.Succeeded {
		t.Fatalf("write fenced on a held permit: %v", err)
	}
	stale := a.IsHolder()
	if err := a.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Txn(t.Context()).If(stale).Then(clientv3.OpPut("recipes/sem-try-data", "y")).Commit(); err != nil || resp.Succeeded {
		t.Fatalf("write fenced on a released permit applied (err %v)", err)
	}
	if err := a.Release(t.Context()); !errors.Is(err, recipes.ErrNotHeld) {
		t.Fatalf("second Release = %v, want ErrNotHeld", err)
	}
	if err := c.TryAcquire(t.Context()); err != nil {
		t.Fatalf("TryAcquire after a release: %v", err)
	}
	for _, sem := range []*recipes.Semaphore{b, c} {
		if err := sem.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := recipes.NewSemaphore(s, name, 0).TryAcquire(t.Context()); !errors.Is(err, recipes.ErrInvalid) {
		t.Fatalf("limit 0: %v, want ErrInvalid", err)
	}
}

// TestSemaphoreOrderAndHandOver: holders H1 H2 and waiters W1 W2 W3 of a
// semaphore of 2. W1 (the first waiter) gives up; then each release
// admits the next waiter in order: the chain of watches hands over without
// anyone watching everyone.
func TestSemaphoreOrderAndHandOver(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/sem-order")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "recipes/sem-order"
	h1, h2 := recipes.NewSemaphore(s, name, 2), recipes.NewSemaphore(s, name, 2)
	for _, h := range []*recipes.Semaphore{h1, h2} {
		if err := h.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan int, 3)
	w1ctx, cancelW1 := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	var ws []*recipes.Semaphore
	for i := 1; i <= 3; i++ {
		w := recipes.NewSemaphore(s, name, 2)
		ws = append(ws, w)
		ctx := t.Context()
		if i == 1 {
			ctx = w1ctx
		}
		wg.Go(func() {
			if err := w.Acquire(ctx); err != nil {
				if i == 1 && errors.Is(err, context.Canceled) {
					got <- -1
					return
				}
				t.Error(err)
				return
			}
			got <- i
		})
		waitKeys(t, cli, name+"/", int64(2+i))
	}
	expect := func(want int) {
		t.Helper()
		select {
		case i := <-got:
			if i != want {
				t.Fatalf("waiter %d came through, want %d", i, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("waiter %d did not come through", want)
		}
	}
	cancelW1()
	expect(-1)
	select {
	case i := <-got:
		t.Fatalf("waiter %d got a permit with none free", i)
	case <-time.After(200 * time.Millisecond):
	}
	if err := h1.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect(2)
	if err := h2.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect(3)
	for _, w := range ws[1:] {
		if err := w.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSemaphoreHolderLoss: a holder whose lease is revoked loses its
// permit at once, and the waiter gets it.
func TestSemaphoreHolderLoss(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/sem-loss")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "recipes/sem-loss"
	sa := sessiontest.NewSession(t, cli, 10*time.Second)
	a := recipes.NewSemaphore(sa, name, 1)
	if err := a.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	b := recipes.NewSemaphore(sessiontest.NewSession(t, cli, 10*time.Second), name, 1)
	got := make(chan error, 1)
	go func() { got <- b.Acquire(t.Context()) }()
	waitKeys(t, cli, name+"/", 2)
	if _, err := cli.Revoke(t.Context(), sa.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(time.Second):
		t.Fatal("holder's Done open after its lease was revoked")
	}
	if !errors.Is(a.Err(), recipes.ErrLost) {
		t.Errorf("Err = %v, want ErrLost", a.Err())
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the freed permit")
	}
	if err := b.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestSemaphoreReleaseRetry: a Release whose request failed is retried;
// if the key is gone by then (the failed request may have deleted it),
// the retry succeeds rather than reporting the permit lost.
func TestSemaphoreReleaseRetry(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/sem-retry")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	sem := recipes.NewSemaphore(sessiontest.NewSession(t, cli, 10*time.Second), "recipes/sem-retry", 1)
	if err := sem.Acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	failed, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sem.Release(failed); err == nil {
		t.Fatal("Release with a cancelled context succeeded")
	}
	// As if the failed request had been applied after all.
	if _, err := cli.Delete(t.Context(), "recipes/sem-retry/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	if err := sem.Release(t.Context()); err != nil {
		t.Fatalf("Release retried after its key went: %v", err)
	}
	if err := sem.Release(t.Context()); !errors.Is(err, recipes.ErrNotHeld) {
		t.Fatalf("Release after the release = %v, want ErrNotHeld", err)
	}
}
