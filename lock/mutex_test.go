package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestMutualExclusion: 20 goroutines on 3 clients, each client connected to
// a different member, each goroutine a participant of its own sharing its
// client's session, increment a counter under the lock with writes fenced
// by IsOwner. The counter ends exact, critical sections never overlap,
// and the fencing tokens observed in lock order strictly increase.
func TestMutualExclusion(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/exclusion")
	const goroutines = 20
	rounds := 200
	if testing.Short() {
		rounds = 5
	}
	const name, counter = "lock/exclusion", "lock/exclusion-counter"
	eps := cluster.Endpoints()
	var sessions []*session.Session
	for _, ep := range eps {
		sessions = append(sessions, sessiontest.NewSession(t, sessiontest.Client(t, ep), 10*time.Second))
	}

	var (
		inside   atomic.Int32
		tokensMu sync.Mutex
		tokens   []lock.Token
		wg       sync.WaitGroup
	)
	start := time.Now()
	for g := range goroutines {
		s := sessions[g%len(sessions)]
		wg.Go(func() {
			m := lock.NewMutex(s, name, lock.WithValue(fmt.Sprintf("goroutine %d", g)))
			for range rounds {
				tok, err := m.Lock(t.Context())
				if err != nil {
					t.Errorf("goroutine %d: lock: %v", g, err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("goroutine %d: %d holders at once", g, n)
				}
				tokensMu.Lock()
				tokens = append(tokens, tok)
				tokensMu.Unlock()
				if _, err := increment(t.Context(), s.Client(), m.IsOwner(), counter); err != nil {
					t.Errorf("goroutine %d: increment with token %d: %v", g, tok, err)
				}
				inside.Add(-1)
				if err := m.Unlock(t.Context()); err != nil {
					t.Errorf("goroutine %d: unlock: %v", g, err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	total := goroutines * rounds
	if got := counterValue(t, sessions[0].Client(), counter); got != int64(total) {
		t.Errorf("counter = %d, want %d", got, total)
	}
	if len(tokens) != total {
		t.Errorf("%d tokens, want %d", len(tokens), total)
	}
	if err := strictlyIncreasing(tokens); err != nil {
		t.Error(err)
	}
	if n := keyCount(t, sessions[0].Client(), name+"/"); n != 0 {
		t.Errorf("%d lock keys left", n)
	}
	t.Logf("%d locked increments by %d goroutines in %v (%v each)", total, goroutines, took, took/time.Duration(total))
}

func TestTryLock(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/trylock")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s1, s2 := sessiontest.NewSession(t, cli, 10*time.Second), sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "lock/trylock"
	a, b := lock.NewMutex(s1, name), lock.NewMutex(s2, name)
	tok, err := a.TryLock(t.Context())
	if err != nil || tok <= 0 {
		t.Fatalf("TryLock of a free lock = %d, %v", tok, err)
	}
	if a.Token() != tok || !strings.HasPrefix(a.Key(), name+"/") || a.Err() != nil {
		t.Fatalf("after TryLock: token %d key %q err %v", a.Token(), a.Key(), a.Err())
	}
	if h := a.Header(); h == nil || h.Revision != int64(tok) {
		t.Fatalf("after TryLock: header %v, want revision %d (the key's creation)", h, tok)
	}
	if _, err := b.TryLock(t.Context()); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("TryLock of a held lock = %v, want ErrLocked", err)
	}
	// A participant on the same session is excluded too.
	if _, err := lock.NewMutex(s1, name).TryLock(t.Context()); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("TryLock on the holder's session = %v, want ErrLocked", err)
	}
	if n := keyCount(t, cli, name+"/"); n != 1 {
		t.Fatalf("%d keys after failed TryLocks, want the holder's only", n)
	}
	if err := a.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok2, err := b.TryLock(t.Context())
	if err != nil || tok2 <= tok {
		t.Fatalf("TryLock after Unlock = %d, %v; want a token above %d", tok2, err, tok)
	}
	if a.Header() != nil {
		t.Fatalf("header %v after Unlock, want nil", a.Header())
	}
	if err := b.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestMisuse(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/misuse")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	m := lock.NewMutex(s, "lock/misuse")
	if err := m.Unlock(t.Context()); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Unlock without Lock = %v, want ErrNotHeld", err)
	}
	if !errors.Is(m.Err(), lock.ErrNotHeld) {
		t.Errorf("Err without Lock = %v, want ErrNotHeld", m.Err())
	}
	select {
	case <-m.Done():
	default:
		t.Error("Done open without a hold")
	}
	if resp, err := cli.Txn(t.Context()).If(m.IsOwner()).Then(clientv3.OpGet("lock/misuse/")).Commit(); err != nil || resp.Succeeded {
		t.Errorf("IsOwner without a hold held: %v", err)
	}
	if _, err := m.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock(t.Context()); !errors.Is(err, lock.ErrInUse) {
		t.Errorf("second Lock = %v, want ErrInUse", err)
	}
	if err := m.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.NewMutex(s, "").Lock(t.Context()); !errors.Is(err, lock.ErrEmptyName) {
		t.Errorf("Lock with an empty name = %v, want ErrEmptyName", err)
	}
	if _, err := m.Resume(t.Context()); err == nil {
		t.Error("Resume without WithLeaseKey succeeded")
	}
}

// TestArrivalOrder: waiters get the lock in the order they queued, and
// each new holder's token is above the previous one's.
func TestArrivalOrder(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/order")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name, waiters = "lock/order", 6
	holder := lock.NewMutex(s, name)
	first, err := holder.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int, waiters)
	tokens := make([]lock.Token, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		m := lock.NewMutex(s, name)
		wg.Go(func() {
			tok, err := m.Lock(t.Context())
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			tokens[i] = tok
			// It led once its predecessor's key was deleted, after its own
			// key was created.
			if h := m.Header(); h == nil || h.Revision <= int64(tok) {
				t.Errorf("waiter %d: header %v, want a revision above its token %d", i, h, tok)
			}
			order <- i
			if err := m.Unlock(t.Context()); err != nil {
				t.Errorf("waiter %d: unlock: %v", i, err)
			}
		})
		waitKeys(t, cli, name+"/", int64(i+2)) // queued before the next starts
	}
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(order)
	next := 0
	for i := range order {
		if i != next {
			t.Fatalf("waiter %d got the lock when waiter %d was due", i, next)
		}
		next++
	}
	if err := strictlyIncreasing(append([]lock.Token{first}, tokens...)); err != nil {
		t.Error(err)
	}
}

// TestHolderLoss: the holder's lease is revoked. Its Done fires at once, the
// waiter gets the lock with a larger token, and a write fenced on the old
// holder's IsOwner is refused.
func TestHolderLoss(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/holder-loss")
	eps := cluster.Endpoints()
	cliA, cliB, admin := sessiontest.Client(t, eps[0]), sessiontest.Client(t, eps[1]), sessiontest.Client(t, eps[2])
	sA, sB := sessiontest.NewSession(t, cliA, 10*time.Second), sessiontest.NewSession(t, cliB, 10*time.Second)
	const name = "lock/holder-loss"
	a, b := lock.NewMutex(sA, name), lock.NewMutex(sB, name)
	tokA, err := a.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	staleOwner := a.IsOwner()
	type result struct {
		tok lock.Token
		err error
	}
	got := make(chan result, 1)
	go func() {
		tok, err := b.Lock(t.Context())
		got <- result{tok, err}
	}()
	waitKeys(t, admin, name+"/", 2)

	if _, err := admin.Revoke(t.Context(), sA.Lease()); err != nil {
		t.Fatal(err)
	}
	took := within(t, "holder's Done after its lease was revoked", a.Done(), time.Second)
	if !errors.Is(a.Err(), lock.ErrLost) || !errors.Is(a.Err(), session.ErrKeyDeleted) {
		t.Errorf("holder's Err = %v, want ErrLost wrapping ErrKeyDeleted", a.Err())
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("waiter did not get the lock after the holder's loss")
	}
	if r.err != nil || r.tok <= tokA {
		t.Fatalf("waiter's Lock = %d, %v; want a token above %d", r.tok, r.err, tokA)
	}
	resp, err := cliA.Txn(t.Context()).If(staleOwner).Then(clientv3.OpPut("lock/holder-loss-data", "stale")).Commit()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Succeeded {
		t.Fatal("a write fenced on the lost hold was applied")
	}
	if resp, err := cliB.Txn(t.Context()).If(b.IsOwner()).Then(clientv3.OpPut("lock/holder-loss-data", "new")).Commit(); err != nil || !resp.Succeeded {
		t.Fatalf("the new holder's fenced write: %v", err)
	}
	if err := a.Unlock(t.Context()); !errors.Is(err, lock.ErrLost) {
		t.Errorf("Unlock of the lost hold = %v, want ErrLost", err)
	}
	if err := b.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("holder's Done fired %v after the revoke", took)
}

// TestWaiterSessionEnds: a waiter whose session ends stops waiting at
// once with ErrLost, and its key goes. (A session that expires because its
// member is unreachable is TestMemberKilled's.)
func TestWaiterSessionEnds(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/waiter-session-ends")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "lock/waiter-session-ends"
	holder := lock.NewMutex(sessiontest.NewSession(t, cli, 10*time.Second), name)
	if _, err := holder.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	ws := sessiontest.NewSession(t, cli, sessiontest.MinTTL)
	errc := make(chan error, 1)
	go func() {
		_, err := lock.NewMutex(ws, name).Lock(t.Context())
		errc <- err
	}()
	waitKeys(t, cli, name+"/", 2)
	ws.Orphan()
	select {
	case err := <-errc:
		if !errors.Is(err, lock.ErrLost) || !errors.Is(err, session.ErrClosed) {
			t.Fatalf("waiter's Lock = %v, want ErrLost wrapping ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("waiter still waiting after its session ended")
	}
	waitKeys(t, cli, name+"/", 1)
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestWaiterRevoked: a waiter whose lease is revoked stops waiting at
// once, not after a TTL.
func TestWaiterRevoked(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/waiter-revoked")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "lock/waiter-revoked"
	holder := lock.NewMutex(sessiontest.NewSession(t, cli, 10*time.Second), name)
	if _, err := holder.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	ws := sessiontest.NewSession(t, cli, 10*time.Second)
	errc := make(chan error, 1)
	go func() {
		_, err := lock.NewMutex(ws, name).Lock(t.Context())
		errc <- err
	}()
	waitKeys(t, cli, name+"/", 2)
	revoked := time.Now()
	if _, err := cli.Revoke(t.Context(), ws.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, lock.ErrLost) {
			t.Fatalf("waiter's Lock = %v, want ErrLost", err)
		}
		t.Logf("revoked waiter gave up after %v", time.Since(revoked))
	case <-time.After(time.Second):
		t.Fatal("revoked waiter still waiting after 1s")
	}
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestCancelWhileWaiting: a cancelled Lock removes its key and the waiter
// behind it moves up.
func TestCancelWhileWaiting(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/cancel")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "lock/cancel"
	holder := lock.NewMutex(s, name)
	if _, err := holder.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := lock.NewMutex(s, name).Lock(ctx)
		errc <- err
	}()
	waitKeys(t, cli, name+"/", 2)
	last := lock.NewMutex(s, name)
	got := make(chan error, 1)
	go func() {
		_, err := last.Lock(t.Context())
		got <- err
	}()
	waitKeys(t, cli, name+"/", 3)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Lock = %v, want context.Canceled", err)
	}
	waitKeys(t, cli, name+"/", 2)
	if err := holder.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter behind a cancelled one never got the lock")
	}
	if err := last.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestResume: a holder restarted with its lease takes its hold back with
// the same token, without a gap another participant could use.
func TestResume(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/resume")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "lock/resume"
	s1 := sessiontest.NewSession(t, cli, 10*time.Second)
	m1 := lock.NewMutex(s1, name, lock.WithLeaseKey(), lock.WithValue("first life"))
	tok, err := m1.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s/%x", name, int64(s1.Lease())); m1.Key() != want {
		t.Fatalf("lease key = %q, want %q", m1.Key(), want)
	}
	s1.Orphan() // the process dies; its lease lives on for the TTL

	other := lock.NewMutex(sessiontest.NewSession(t, cli, 10*time.Second), name)
	if _, err := other.TryLock(t.Context()); !errors.Is(err, lock.ErrLocked) {
		t.Fatalf("TryLock while the dead holder's lease lives = %v, want ErrLocked", err)
	}

	s2, err := session.New(t.Context(), cli, session.WithLease(s1.Lease()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close(context.Background()) })
	m2 := lock.NewMutex(s2, name, lock.WithLeaseKey())
	tok2, err := m2.Resume(t.Context())
	if err != nil || tok2 != tok {
		t.Fatalf("Resume = %d, %v; want the old token %d", tok2, err, tok)
	}
	// With an operation: etcd answers comparisons alone from the local
	// member, not linearizably.
	if resp, err := cli.Txn(t.Context()).If(m2.IsOwner()).Then(clientv3.OpGet(m2.Key())).Commit(); err != nil || !resp.Succeeded {
		t.Fatalf("IsOwner after Resume does not hold: %v", err)
	}
	if err := m2.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Resume(t.Context()); !errors.Is(err, lock.ErrNoKey) {
		t.Fatalf("Resume after Unlock = %v, want ErrNoKey", err)
	}
}
