package lock_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
)

// TestMemberKilled kills members of a three-member cluster, one at a time,
// while participants on clients of all members increment a counter under
// the lock: the lock keeps excluding, the counter equals the increments
// that succeeded, tokens keep increasing. A waiter whose client knows only
// the killed member gives up with ErrLost when its session expires, and
// the lock passes on without it.
func TestMemberKilled(t *testing.T) {
	c := testcluster.Start(t, 3)
	eps := c.Endpoints()
	const name, counter = "lock/kill", "lock/kill-counter"
	const goroutines = 6
	rounds := 30
	if testing.Short() {
		rounds = 10
	}

	admin := sessiontest.Client(t, eps...)
	var (
		inside    atomic.Int32
		succeeded atomic.Int64
		retries   atomic.Int64
		tokensMu  sync.Mutex
		tokens    []lock.Token
		wg        sync.WaitGroup
	)
	halfway, threeQuarters := make(chan struct{}), make(chan struct{})
	var once, once3 sync.Once
	for range goroutines {
		cli := sessiontest.Client(t, eps...)
		s := sessiontest.NewSession(t, cli, 10*time.Second)
		wg.Go(func() {
			m := lock.NewMutex(s, name)
			for done := 0; done < rounds; {
				tok, err := m.Lock(t.Context())
				if err != nil {
					if t.Context().Err() != nil {
						return
					}
					retries.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders at once", n)
				}
				tokensMu.Lock()
				tokens = append(tokens, tok)
				tokensMu.Unlock()
				_, err = increment(t.Context(), cli, m.IsOwner(), counter)
				inside.Add(-1)
				if err == nil {
					done++
					switch succeeded.Add(1) {
					case goroutines * int64(rounds) / 2:
						once.Do(func() { close(halfway) })
					case goroutines * int64(rounds) * 3 / 4:
						once3.Do(func() { close(threeQuarters) })
					}
				} else {
					retries.Add(1)
				}
				for m.Unlock(t.Context()) != nil && m.Err() == nil {
					retries.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	select {
	case <-halfway:
	case <-time.After(time.Minute):
		t.Fatal("no progress before the kill")
	}

	// Halfway, a participant on a client of member 2 only queues behind a
	// holder, and member 2 is killed.
	blocker := lock.NewMutex(sessiontest.NewSession(t, admin, 10*time.Second), name)
	if _, err := blocker.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	lonely := sessiontest.NewSession(t, sessiontest.Client(t, eps[2]), sessiontest.MinTTL)
	lonelyErr := make(chan error, 1)
	go func() {
		_, err := lock.NewMutex(lonely, name).Lock(t.Context())
		lonelyErr <- err
	}()
	waitKeys(t, admin, fmt.Sprintf("%s/%x-", name, int64(lonely.Lease())), 1)
	killed := time.Now()
	c.Kill(2)
	select {
	case err := <-lonelyErr:
		if !errors.Is(err, lock.ErrLost) || !errors.Is(err, session.ErrKeepAliveTimeout) {
			t.Errorf("lonely waiter's Lock = %v, want ErrLost wrapping ErrKeepAliveTimeout", err)
		}
		t.Logf("waiter on the killed member gave up %v after the kill (TTL %v): %v", time.Since(killed), lonely.TTL(), err)
	case <-time.After(lonely.TTL() + 2*time.Second):
		t.Fatal("waiter on the killed member still waiting after its TTL")
	}
	if err := blocker.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.Restart(2)
	c.WaitReady(30 * time.Second)

	// Three quarters in, member 0 dies in the middle of the traffic.
	select {
	case <-threeQuarters:
	case <-time.After(time.Minute):
		t.Fatal("no progress after the first kill")
	}
	c.Kill(0)
	wg.Wait()
	c.Restart(0)
	c.WaitReady(30 * time.Second)

	total := int64(goroutines * rounds)
	if succeeded.Load() != total {
		t.Fatalf("%d increments succeeded, want %d", succeeded.Load(), total)
	}
	if got := counterValue(t, admin, counter); got != total {
		t.Errorf("counter = %d, want %d", got, total)
	}
	if err := strictlyIncreasing(tokens); err != nil {
		t.Error(err)
	}
	t.Logf("%d increments, %d retried steps across the kill", total, retries.Load())
}
