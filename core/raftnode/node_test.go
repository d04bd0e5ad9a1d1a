package raftnode

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkResult fails unless res is the state machine's answer to payload.
func checkResult(t testing.TB, payload string, res []byte) {
	t.Helper()
	_, got, ok := strings.Cut(string(res), ":")
	if !ok || got != payload {
		t.Errorf("proposal %q got result %q, not its own", payload, res)
	}
}

func TestProposeOnAllMembersSameOrderOwnResults(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{})
	const callers, each = 60, 20
	ctx := testCtx(t, 60*time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	retried := map[string]bool{} // may legitimately be applied twice
	for i := range callers {
		m := c.members[i%len(c.members)]
		wg.Go(func() {
			for j := range each {
				payload := fmt.Sprintf("c%d-%d", i, j)
				for {
					res, err := m.node.Propose(ctx, []byte(payload))
					if err == nil {
						checkResult(t, payload, res)
						break
					}
					// A leader change on a loaded machine: the outcome is
					// unknown, so the retry may apply the payload twice.
					if !errors.Is(err, ErrLeaderChanged) && !errors.Is(err, ErrNoLeader) || ctx.Err() != nil {
						t.Errorf("propose %s on %s: %v", payload, m.name, err)
						return
					}
					mu.Lock()
					retried[payload] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	c.waitConverged()

	recs := c.members[0].sm.Records()
	count := map[string]int{}
	perEntry := map[uint64]int{}
	for _, r := range recs {
		count[r.Payload]++
		perEntry[r.Index]++
	}
	for i := range callers {
		for j := range each {
			p := fmt.Sprintf("c%d-%d", i, j)
			if n := count[p]; n == 0 || n > 1 && !retried[p] {
				t.Fatalf("payload %s applied %d times", p, n)
			}
		}
	}
	if len(count) != callers*each {
		t.Fatalf("%d distinct payloads applied, want %d", len(count), callers*each)
	}
	packed := 0
	for _, n := range perEntry {
		packed = max(packed, n)
	}
	if packed < 2 {
		t.Errorf("no raft entry held more than one payload: concurrent proposals were not packed")
	}
	t.Logf("%d payloads in %d raft entries (max %d per entry), %d retried after a leader change", len(recs), len(perEntry), packed, len(retried))
}

func TestProposeSingleNodeAndEmptyPayload(t *testing.T) {
	c := newTestCluster(t, 1, clusterOptions{})
	n := c.members[0].node
	ctx := testCtx(t, 10*time.Second)
	res, err := n.Propose(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, "", res)
	if err := n.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	st := n.Status()
	if !st.IsLeader || st.Leader != n.ID() || st.AppliedIndex == 0 || st.State != "Leader" {
		t.Fatalf("status %+v", st)
	}
	big := make([]byte, maxPayloadBytes+1)
	if _, err := n.Propose(ctx, big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: %v, want ErrTooLarge", err)
	}
}

func TestProposeCallerDeadline(t *testing.T) {
	c := newTestCluster(t, 1, clusterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.members[0].node.Propose(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := c.members[0].node.Propose(ctx, []byte("x")); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired context: %v, want ErrTimeout and DeadlineExceeded", err)
	}
}
