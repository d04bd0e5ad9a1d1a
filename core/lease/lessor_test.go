package lease

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestMinTTLFor(t *testing.T) {
	for _, tc := range []struct {
		election, heartbeat, want time.Duration
	}{
		{time.Second, 100 * time.Millisecond, 2 * time.Second},       // 15 ticks × 100 ms = 1.5 s
		{500 * time.Millisecond, 50 * time.Millisecond, time.Second}, // 750 ms
		{5 * time.Second, time.Second, 7 * time.Second},              // (3×5)/2 = 7 ticks
		{time.Second, 300 * time.Millisecond, 2 * time.Second},       // 3 ticks: 4 × 300 ms = 1.2 s
		{10 * time.Millisecond, time.Millisecond, time.Second},       // never below 1 s
	} {
		if got := MinTTLFor(tc.election, tc.heartbeat); got != tc.want {
			t.Errorf("MinTTLFor(%v, %v) = %v, want %v", tc.election, tc.heartbeat, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err == nil {
		t.Fatal("config without Raft validated")
	}
	cfg := DefaultConfig()
	cfg.Raft = &fakeRaft{}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.RevokeRate, cfg.CheckpointInterval = 0, 0
	if err := cfg.Validate(); err == nil {
		t.Fatal("zero revoke rate and checkpoint interval validated")
	}
}

func TestRowEncodingIsEtcds(t *testing.T) {
	// leasepb.Lease{ID: 1, TTL: 2} and {ID: 300, TTL: 5, RemainingTTL: 3}.
	if got := encodeRow(1, 2, 0); string(got) != "\x08\x01\x10\x02" {
		t.Fatalf("encodeRow(1, 2, 0) = %x", got)
	}
	b := encodeRow(300, 5, 3)
	if string(b) != "\x08\xac\x02\x10\x05\x18\x03" {
		t.Fatalf("encodeRow(300, 5, 3) = %x", b)
	}
	for _, row := range [][3]int64{{300, 5, 3}, {math.MaxInt64, MaxTTL, 0}, {1, 1, 1}} {
		id, ttl, rem, err := decodeRow(encodeRow(row[0], row[1], row[2]))
		if err != nil || id != row[0] || ttl != row[1] || rem != row[2] {
			t.Fatalf("decode(encode(%v)) = %d %d %d %v", row, id, ttl, rem, err)
		}
	}
	if _, _, _, err := decodeRow([]byte{0x08}); err == nil {
		t.Fatal("truncated row decoded")
	}
}

func TestApplyGrantRevokeCheckpointAndRecover(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	l := h.l
	if _, err := l.Grant(&pb.LeaseGrantRequest{ID: 5, TTL: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Grant(&pb.LeaseGrantRequest{ID: 5, TTL: 10}); !errors.Is(err, ErrLeaseExists) {
		t.Fatalf("second grant: %v", err)
	}
	if _, err := l.Grant(&pb.LeaseGrantRequest{ID: 6, TTL: MaxTTL + 1}); !errors.Is(err, ErrLeaseTTLTooLarge) {
		t.Fatalf("too large TTL: %v", err)
	}
	if _, err := l.Grant(&pb.LeaseGrantRequest{ID: 0, TTL: 10}); err == nil {
		t.Fatal("grant of ID 0 applied")
	}
	if _, err := l.Grant(&pb.LeaseGrantRequest{ID: 7, TTL: 20}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b", "a", "c"} {
		if err := h.kv.put(k, 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.kv.put("c", 7); err != nil { // moves c to lease 7
		t.Fatal(err)
	}
	if got := l.Leases(); !slices.Equal(got, []int64{5, 7}) {
		t.Fatalf("leases = %v", got)
	}
	info, _ := l.Lookup(5)
	if fmt.Sprintf("%s", info.Keys) != "[a b]" || info.TTL != 10*time.Second {
		t.Fatalf("lease 5 = %+v", info)
	}
	if _, err := l.Checkpoint(&pb.LeaseCheckpointRequest{Checkpoints: []*pb.LeaseCheckpoint{{ID: 7, Remaining_TTL: 4}, {ID: 99, Remaining_TTL: 1}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := l.Revoke(5, h.kv)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Revision != h.kv.rev || fmt.Sprint(h.kv.deletes) != "[[a b]]" || fmt.Sprint(h.kv.present()) != "[c]" {
		t.Fatalf("revoke: header %d (store %d), deletes %v, left %v", resp.Header.Revision, h.kv.rev, h.kv.deletes, h.kv.present())
	}
	if _, err := l.Revoke(5, h.kv); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if err := h.be.Commit(); err != nil {
		t.Fatal(err)
	}

	// A fresh lessor over the same database: the table comes back (keys
	// are the store's to re-attach).
	h2 := newHarness(t, t.TempDir(), nil)
	defer h2.close(t)
	if err := h2.l.Recover(h.be); err != nil {
		t.Fatal(err)
	}
	info, ok := h2.l.Lookup(7)
	if !ok || info.TTL != 20*time.Second || info.Remaining != 4*time.Second || len(h2.l.Leases()) != 1 {
		t.Fatalf("recovered lease 7 = %+v (%v), leases %v", info, ok, h2.l.Leases())
	}
	h.close(t)
}

func TestPrepareGrant(t *testing.T) {
	h := newHarness(t, t.TempDir(), func(c *Config) { c.MinTTL = 2 * time.Second })
	defer h.close(t)
	r := h.l.PrepareGrant(&pb.LeaseGrantRequest{TTL: 1}, 0xabcd)
	if r.TTL != 2 || r.ID <= 0 || r.ID>>47 != 0xabcd {
		t.Fatalf("prepared %+v: want TTL 2 and a positive ID with the member's bits 0xabcd", r)
	}
	seen := map[int64]bool{}
	for range 1000 {
		id := h.l.PrepareGrant(&pb.LeaseGrantRequest{TTL: 5}, 0xffff).ID
		if id <= 0 || seen[id] {
			t.Fatalf("picked ID %x twice or not positive", id)
		}
		seen[id] = true
	}
	if r := h.l.PrepareGrant(&pb.LeaseGrantRequest{ID: 42, TTL: 100}, 1); r.ID != 42 || r.TTL != 100 {
		t.Fatalf("prepared %+v, want the client's ID and TTL", r)
	}
}

func TestPrimaryExpiresLeaseAfterTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), nil)
		defer h.close(t)
		h.lead(t)
		start := time.Now()
		h.grant(t, 1, 10)
		if err := h.kv.put("k", 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		if _, ok := h.raft.revokedAt(1); ok {
			t.Fatal("revoked before its TTL")
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		at, ok := h.raft.revokedAt(1)
		if !ok || at.Sub(start) != 10*time.Second {
			t.Fatalf("revoked %v after grant (%v), want 10s", at.Sub(start), ok)
		}
		if len(h.kv.present()) != 0 {
			t.Fatalf("keys left after expiry: %v", h.kv.present())
		}
	})
}

func TestFollowerNeverExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), nil)
		defer h.close(t)
		h.grant(t, 1, 2)
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, ok := h.raft.revokedAt(1); ok || !h.l.Exists(1) {
			t.Fatal("a follower expired a lease")
		}
		if _, err := h.l.Renew(t.Context(), 1); !errors.Is(err, ErrNotPrimary) {
			t.Fatalf("renew on a follower: %v", err)
		}
		if _, err := h.l.TimeToLive(&pb.LeaseTimeToLiveRequest{ID: 1}); !errors.Is(err, ErrNotPrimary) {
			t.Fatalf("timetolive on a follower: %v", err)
		}
	})
}

func TestPromotionExtendsEveryDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), func(c *Config) { c.PromoteExtension = 3 * time.Second })
		defer h.close(t)
		h.grant(t, 1, 10) // granted while following: no deadline yet
		time.Sleep(time.Minute)
		h.lead(t)
		promoted := time.Now()
		ttl, err := h.l.TimeToLive(&pb.LeaseTimeToLiveRequest{ID: 1})
		if err != nil || ttl.TTL != 13 || ttl.GrantedTTL != 10 { // TTL + extension
			t.Fatalf("timetolive after promotion = %+v, %v", ttl, err)
		}
		time.Sleep(14 * time.Second)
		synctest.Wait()
		at, ok := h.raft.revokedAt(1)
		if !ok || at.Sub(promoted) != 13*time.Second {
			t.Fatalf("expired %v after promotion, want TTL + extension = 13s", at.Sub(promoted))
		}
	})
}

func TestRenewKeepsAliveAndUnknownLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), nil)
		defer h.close(t)
		h.lead(t)
		h.grant(t, 1, 3)
		for range 10 {
			time.Sleep(2 * time.Second)
			if ttl, err := h.l.Renew(t.Context(), 1); err != nil || ttl != 3 {
				t.Fatalf("renew = %d, %v", ttl, err)
			}
		}
		if _, ok := h.raft.revokedAt(1); ok {
			t.Fatal("a renewed lease expired")
		}
		if _, err := h.l.Renew(t.Context(), 2); !errors.Is(err, ErrLeaseNotFound) {
			t.Fatalf("renew of an unknown lease: %v", err)
		}
		if _, err := h.l.TimeToLive(&pb.LeaseTimeToLiveRequest{ID: 2}); !errors.Is(err, ErrLeaseNotFound) {
			t.Fatalf("timetolive of an unknown lease: %v", err)
		}
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if _, ok := h.raft.revokedAt(1); !ok {
			t.Fatal("lease not expired once renewals stopped")
		}
	})
}

// The checkpoint bound: a lease nobody renews, with a leader change every
// 20 s, still expires within TTL + n × (1.1 × interval + extension + 1 s).
// Without checkpoints each new leader would restart the full TTL and the
// lease would never expire.
func TestCheckpointsBoundExpiryAcrossLeaderChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			interval  = 5 * time.Second
			extension = time.Second
			ttl       = 60 * time.Second
		)
		h := newHarness(t, t.TempDir(), func(c *Config) {
			c.CheckpointInterval, c.PromoteExtension = interval, extension
		})
		defer h.close(t)
		h.lead(t)
		start := time.Now()
		h.grant(t, 1, int64(ttl/time.Second))
		changes := 0
		for {
			time.Sleep(20 * time.Second)
			synctest.Wait()
			if _, ok := h.raft.revokedAt(1); ok {
				break
			}
			h.follow()
			h.lead(t)
			changes++
		}
		at, _ := h.raft.revokedAt(1)
		bound := ttl + time.Duration(changes)*(interval*11/10+extension+time.Second)
		t.Logf("expired after %v across %d leader changes (bound %v); %d checkpoints", at.Sub(start), changes, bound, len(h.raft.checkpoints()))
		if at.Sub(start) < ttl || at.Sub(start) > bound {
			t.Fatalf("expired after %v, want within [%v, %v]", at.Sub(start), ttl, bound)
		}
	})
}

// A renewal after a checkpoint clears it through raft before it answers:
// otherwise the next leader would take the old remaining TTL and expire a
// lease the client was just told lives a whole TTL.
func TestRenewClearsCheckpointBeforeAnswering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), func(c *Config) { c.CheckpointInterval, c.PromoteExtension = 5*time.Second, time.Second })
		defer h.close(t)
		h.lead(t)
		h.grant(t, 1, 60)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		info, _ := h.l.Lookup(1)
		if info.Remaining <= 0 || info.Remaining > 45*time.Second {
			t.Fatalf("no checkpoint after 20 s: %+v (checkpoints %v)", info, h.raft.checkpoints())
		}
		if ttl, err := h.l.Renew(t.Context(), 1); err != nil || ttl != 60 {
			t.Fatalf("renew = %d, %v", ttl, err)
		}
		if info, _ := h.l.Lookup(1); info.Remaining != 0 {
			t.Fatalf("renew answered before the checkpoint was cleared: %+v", info)
		}
		cps := h.raft.checkpoints()
		if last := cps[len(cps)-1]; last.ID != 1 || last.Remaining_TTL != 0 {
			t.Fatalf("last checkpoint %v, want a clear of lease 1", last)
		}
		// A second renewal right away writes nothing.
		before := len(h.raft.checkpoints())
		if _, err := h.l.Renew(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		if n := len(h.raft.checkpoints()); n != before {
			t.Fatalf("a renewal without a checkpoint to clear proposed %d checkpoints", n-before)
		}
		// A new leader gives the full TTL again.
		h.follow()
		h.lead(t)
		promoted := time.Now()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		at, ok := h.raft.revokedAt(1)
		if !ok || at.Sub(promoted) != 61*time.Second {
			t.Fatalf("expired %v after the leader change, want TTL + extension = 61s", at.Sub(promoted))
		}
	})
}

// A checkpoint whose proposal failed may still be applied later: the next
// renewal clears it to be safe.
func TestFailedCheckpointMakesRenewalClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), func(c *Config) { c.CheckpointInterval = 5 * time.Second })
		defer h.close(t)
		h.lead(t)
		h.grant(t, 1, 60)
		h.raft.mu.Lock()
		h.raft.failCP = errors.New("timed out")
		h.raft.mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		h.raft.mu.Lock()
		h.raft.failCP = nil
		h.raft.mu.Unlock()
		before := len(h.raft.checkpoints())
		if _, err := h.l.Renew(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		cps := h.raft.checkpoints()
		if len(cps) != before+1 || cps[len(cps)-1].Remaining_TTL != 0 {
			t.Fatalf("renewal after a failed checkpoint proposed %v", cps[before:])
		}
	})
}

func TestRevokeRateLimitsMassExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate, n = 100, 1000
		h := newHarness(t, t.TempDir(), func(c *Config) { c.RevokeRate = rate })
		defer h.close(t)
		h.lead(t)
		start := time.Now()
		for i := range n {
			h.grant(t, int64(i+1), 10)
		}
		count := func() int {
			h.raft.mu.Lock()
			defer h.raft.mu.Unlock()
			return len(h.raft.revoked)
		}
		time.Sleep(10*time.Second + time.Second)
		synctest.Wait()
		// One second into the expiry: at most a second's worth plus the
		// saved-up tenth of a second.
		if got := count(); got > rate+rate/10+1 || got < rate/2 {
			t.Fatalf("%d leases revoked in the first second, want about %d", got, rate)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := count(); got != n {
			t.Fatalf("%d of %d leases revoked after 10 s more", got, n)
		}
		var last time.Time
		for _, at := range h.raft.revoked {
			if at.After(last) {
				last = at
			}
		}
		if d := last.Sub(start) - 10*time.Second; d < 9*time.Second || d > 10*time.Second {
			t.Fatalf("%d revocations took %v at %d/s", n, d, rate)
		}
	})
}

// A renewal of a lease whose revoke is in flight waits for the outcome.
func TestRenewWaitsForRevokeInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), nil)
		defer h.close(t)
		h.lead(t)
		release := make(chan struct{})
		h.raft.mu.Lock()
		h.raft.blockRev = release
		h.raft.mu.Unlock()
		h.grant(t, 1, 5)
		time.Sleep(6 * time.Second)
		synctest.Wait() // the revoke is proposed and blocked
		done := make(chan error, 1)
		go func() {
			_, err := h.l.Renew(t.Context(), 1)
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("renewal answered (%v) while the revoke was in flight", err)
		default:
		}
		close(release)
		if err := <-done; !errors.Is(err, ErrLeaseNotFound) {
			t.Fatalf("renewal after the revoke: %v", err)
		}
	})
}

func TestDemotionFailsWaitingRenewalsAndStopsExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), nil)
		defer h.close(t)
		h.lead(t)
		h.grant(t, 1, 5)
		h.follow()
		time.Sleep(time.Minute)
		synctest.Wait()
		if _, ok := h.raft.revokedAt(1); ok {
			t.Fatal("a demoted lessor expired a lease")
		}
		if _, err := h.l.Renew(t.Context(), 1); !errors.Is(err, ErrNotPrimary) {
			t.Fatalf("renew after demotion: %v", err)
		}
	})
}

func TestTimeToLiveKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, t.TempDir(), nil)
		defer h.close(t)
		h.lead(t)
		h.grant(t, 1, 30)
		for _, k := range []string{"z", "m", "a"} {
			if err := h.kv.put(k, 1); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10*time.Second + 500*time.Millisecond)
		resp, err := h.l.TimeToLive(&pb.LeaseTimeToLiveRequest{ID: 1, Keys: true})
		if err != nil || resp.TTL != 19 || resp.GrantedTTL != 30 || fmt.Sprintf("%s", resp.Keys) != "[a m z]" {
			t.Fatalf("timetolive = %+v, %v", resp, err)
		}
		resp, _ = h.l.TimeToLive(&pb.LeaseTimeToLiveRequest{ID: 1})
		if resp.Keys != nil {
			t.Fatalf("keys without asking: %s", resp.Keys)
		}
	})
}
