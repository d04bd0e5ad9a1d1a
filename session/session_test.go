package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newSession(t *testing.T, cli *clientv3.Client, opts ...session.Option) *session.Session {
	t.Helper()
	s, err := session.New(t.Context(), cli, opts...)
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// waitDone waits for done to close within limit and returns how long it
// took.
func waitDone(t *testing.T, what string, done <-chan struct{}, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(limit):
		t.Fatalf("%s: not done after %v", what, limit)
		return 0
	}
}

func leaseTTL(t *testing.T, cli *clientv3.Client, id clientv3.LeaseID) int64 {
	t.Helper()
	resp, err := cli.TimeToLive(t.Context(), id)
	if err != nil {
		t.Fatalf("time to live of %x: %v", id, err)
	}
	return resp.TTL
}

func TestNewGrantsAndCloseRevokes(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "session/close/")
	cli := sessiontest.Client(t, endpoints()...)
	s := newSession(t, cli, session.WithTTL(5500*time.Millisecond))
	if s.TTL() != 6*time.Second {
		t.Errorf("TTL = %v, want 6s (rounded up to whole seconds)", s.TTL())
	}
	if ttl := leaseTTL(t, cli, s.Lease()); ttl <= 0 || ttl > 6 {
		t.Errorf("server TTL of the lease = %d, want (0, 6]", ttl)
	}
	if _, err := cli.Put(t.Context(), "session/close/k", "v", clientv3.WithLease(s.Lease())); err != nil {
		t.Fatal(err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err of a live session = %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !errors.Is(s.Err(), session.ErrClosed) {
		t.Errorf("Err after Close = %v, want ErrClosed", s.Err())
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done open after Close")
	}
	if ttl := leaseTTL(t, cli, s.Lease()); ttl != -1 {
		t.Errorf("lease TTL after Close = %d, want -1 (revoked)", ttl)
	}
	resp, err := cli.Get(t.Context(), "session/close/k")
	if err != nil || len(resp.Kvs) != 0 {
		t.Errorf("key bound to the closed session: %v, %v; want gone", resp.Kvs, err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestInvalidTTL(t *testing.T) {
	cli := sessiontest.Client(t, endpoints()...)
	if _, err := session.New(t.Context(), cli, session.WithTTL(500*time.Millisecond)); err == nil {
		t.Fatal("New with a TTL below one second succeeded")
	}
}

func TestRevokedElsewhereEndsSession(t *testing.T) {
	cli := sessiontest.Client(t, endpoints()...)
	other := sessiontest.Client(t, endpoints()...)
	s := newSession(t, cli, session.WithTTL(3*time.Second))
	if _, err := other.Revoke(t.Context(), s.Lease()); err != nil {
		t.Fatal(err)
	}
	// Noticed at the next renewal, which is due within TTL/3.
	took := waitDone(t, "session Done after revoke", s.Done(), s.TTL()/3+time.Second)
	if !errors.Is(s.Err(), session.ErrExpired) {
		t.Errorf("Err = %v, want ErrExpired", s.Err())
	}
	if !errors.Is(context.Cause(s.Context()), session.ErrExpired) {
		t.Errorf("context cause = %v, want ErrExpired", context.Cause(s.Context()))
	}
	t.Logf("revocation noticed after %v", took)
}

func TestOrphanAndResume(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "session/orphan/")
	cli := sessiontest.Client(t, endpoints()...)
	s := newSession(t, cli, session.WithTTL(sessiontest.MinTTL))
	if _, err := cli.Put(t.Context(), "session/orphan/k", "v", clientv3.WithLease(s.Lease())); err != nil {
		t.Fatal(err)
	}
	s.Orphan()
	if !errors.Is(s.Err(), session.ErrClosed) {
		t.Fatalf("Err after Orphan = %v, want ErrClosed", s.Err())
	}
	if ttl := leaseTTL(t, cli, s.Lease()); ttl <= 0 {
		t.Fatalf("lease TTL right after Orphan = %d, want alive", ttl)
	}

	// A "restarted process" resumes the lease, and its key with it.
	cli2 := sessiontest.Client(t, endpoints()...)
	resumed := newSession(t, cli2, session.WithLease(s.Lease()))
	if resumed.Lease() != s.Lease() || resumed.TTL() != s.TTL() {
		t.Fatalf("resumed lease %x TTL %v, want %x TTL %v", resumed.Lease(), resumed.TTL(), s.Lease(), s.TTL())
	}
	// Kept alive past the TTL, the key stays.
	time.Sleep(resumed.TTL() + 500*time.Millisecond) // the point of the test is that time passes
	resp, err := cli2.Get(t.Context(), "session/orphan/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("key of the resumed lease after a TTL: %v, %v", resp.Kvs, err)
	}

	// Orphaned again, the lease expires on its own.
	resumed.Orphan()
	deadline := time.Now().Add(resumed.TTL() + 2*time.Second)
	for leaseTTL(t, cli2, s.Lease()) != -1 {
		if time.Now().After(deadline) {
			t.Fatal("orphaned lease did not expire")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := session.New(t.Context(), cli2, session.WithLease(s.Lease())); !errors.Is(err, session.ErrExpired) {
		t.Fatalf("resume of an expired lease: %v, want ErrExpired", err)
	}
}

func TestClientCloseEndsSession(t *testing.T) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(t.Context(), cli, session.WithTTL(sessiontest.MinTTL))
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	waitDone(t, "session Done after client Close", s.Done(), s.TTL()+time.Second)
	if !errors.Is(s.Err(), session.ErrClosed) && !errors.Is(s.Err(), session.ErrKeepAliveTimeout) {
		t.Errorf("Err = %v, want ErrClosed or ErrKeepAliveTimeout", s.Err())
	}
}

func TestHold(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "session/hold/")
	cli := sessiontest.Client(t, endpoints()...)
	s := newSession(t, cli, session.WithTTL(10*time.Second))
	put := func(key string) (int64, int64) {
		resp, err := cli.Put(t.Context(), key, "", clientv3.WithLease(s.Lease()))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision, resp.Header.Revision
	}

	t.Run("Deleted", func(t *testing.T) {
		created, seen := put("session/hold/a")
		h := s.Hold("session/hold/a", created, seen)
		defer h.Stop()
		// Updating the value is not a loss.
		if _, err := cli.Put(t.Context(), "session/hold/a", "new", clientv3.WithLease(s.Lease())); err != nil {
			t.Fatal(err)
		}
		// With an operation, not comparisons alone: etcd answers a Txn of
		// comparisons alone from the local member, not linearizably.
		if resp, err := cli.Txn(t.Context()).If(h.Cmp()).Then(clientv3.OpGet(h.Key())).Commit(); err != nil || !resp.Succeeded {
			t.Fatalf("Cmp of a live hold: succeeded=%v err=%v", resp != nil && resp.Succeeded, err)
		}
		if h.Err() != nil {
			t.Fatalf("Err after a value update = %v", h.Err())
		}
		if _, err := cli.Delete(t.Context(), "session/hold/a"); err != nil {
			t.Fatal(err)
		}
		waitDone(t, "hold Done after delete", h.Done(), 2*time.Second)
		if !errors.Is(h.Err(), session.ErrKeyDeleted) {
			t.Errorf("Err = %v, want ErrKeyDeleted", h.Err())
		}
		if resp, err := cli.Txn(t.Context()).If(h.Cmp()).Then(clientv3.OpGet(h.Key())).Commit(); err != nil || resp.Succeeded {
			t.Fatalf("Cmp of a lost hold: succeeded=%v err=%v, want refused", resp != nil && resp.Succeeded, err)
		}
	})

	t.Run("Replaced", func(t *testing.T) {
		created, seen := put("session/hold/b")
		h := s.Hold("session/hold/b", created, seen)
		defer h.Stop()
		// Deleted and re-created in one transaction: a different key.
		if _, err := cli.Txn(t.Context()).Then(clientv3.OpDelete("session/hold/b")).Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(t.Context(), "session/hold/b", ""); err != nil {
			t.Fatal(err)
		}
		waitDone(t, "hold Done after re-creation", h.Done(), 2*time.Second)
		if !errors.Is(h.Err(), session.ErrKeyDeleted) {
			t.Errorf("Err = %v, want ErrKeyDeleted", h.Err())
		}
	})

	t.Run("Stop", func(t *testing.T) {
		created, seen := put("session/hold/c")
		h := s.Hold("session/hold/c", created, seen)
		h.Stop()
		if !errors.Is(h.Err(), session.ErrHoldStopped) {
			t.Errorf("Err after Stop = %v, want ErrHoldStopped", h.Err())
		}
		resp, err := cli.Get(t.Context(), "session/hold/c")
		if err != nil || len(resp.Kvs) != 1 {
			t.Errorf("Stop deleted the key: %v, %v", resp.Kvs, err)
		}
	})

	t.Run("SessionEnds", func(t *testing.T) {
		s2 := newSession(t, cli, session.WithTTL(10*time.Second))
		resp, err := cli.Put(t.Context(), "session/hold/d", "", clientv3.WithLease(s2.Lease()))
		if err != nil {
			t.Fatal(err)
		}
		h := s2.Hold("session/hold/d", resp.Header.Revision, resp.Header.Revision)
		defer h.Stop()
		s2.Orphan()
		waitDone(t, "hold Done after the session ended", h.Done(), time.Second)
		if !errors.Is(h.Err(), session.ErrClosed) {
			t.Errorf("Err = %v, want the session's ErrClosed", h.Err())
		}
	})
}

// TestMemberKilled: a session whose client can reach another member
// survives the loss of one member; a session whose client knows only the
// killed member ends with ErrKeepAliveTimeout within its TTL.
func TestMemberKilled(t *testing.T) {
	c := testcluster.Start(t, 3)
	eps := c.Endpoints()
	all := sessiontest.Client(t, eps...)
	only0 := sessiontest.Client(t, eps[0])
	survivor := newSession(t, all, session.WithTTL(sessiontest.MinTTL))
	doomed := newSession(t, only0, session.WithTTL(sessiontest.MinTTL))
	if _, err := all.Put(t.Context(), "session/kill/k", "", clientv3.WithLease(survivor.Lease())); err != nil {
		t.Fatal(err)
	}

	killed := time.Now()
	c.Kill(0)
	took := waitDone(t, "session of the killed member", doomed.Done(), doomed.TTL()+time.Second)
	if !errors.Is(doomed.Err(), session.ErrKeepAliveTimeout) {
		t.Errorf("Err = %v, want ErrKeepAliveTimeout", doomed.Err())
	}
	t.Logf("session on the killed member ended %v after the kill (TTL %v)", took, doomed.TTL())

	// Two TTLs later the other session and its key are still there.
	for time.Since(killed) < 2*survivor.TTL() {
		time.Sleep(100 * time.Millisecond)
	}
	if err := survivor.Err(); err != nil {
		t.Fatalf("session with a live member ended: %v", err)
	}
	resp, err := all.Get(t.Context(), "session/kill/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("key of the surviving session: %v, %v", resp.Kvs, err)
	}
	c.Restart(0)
	c.WaitReady(30 * time.Second)
	if err := survivor.Err(); err != nil {
		t.Fatalf("session ended across the restart: %v", err)
	}
}
