package raftnode

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// A single register: writes are proposals "w:<v>", reads are ReadBarrier
// followed by a local read of the member's state machine.
type regInput struct {
	write bool
	value string
}

type regOutput struct {
	value string
}

var registerModel = porcupine.Model{
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in := state.(string), input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(regOutput).value == st, st
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write(%q)", in.value)
		}
		return fmt.Sprintf("read() → %q", output.(regOutput).value)
	},
}

// history records operations for porcupine.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// counts of outcomes, for the test to check it exercised something
	writesOK, writesUnknown, readsOK, readsFailed atomic.Int64
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(op porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
}

// definitelyNotApplied reports errors after which the write certainly did
// not take effect.
func definitelyNotApplied(err error) bool {
	return errors.Is(err, ErrNoLeader) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrTooLarge)
}

// runClient issues writes and reads against m until stop closes.
func runClient(m *testMember, client int, h *history, stop <-chan struct{}) {
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if seq%2 == 0 {
			v := fmt.Sprintf("c%d-%d", client, seq)
			call := h.now()
			_, err := m.node.Propose(ctx, []byte("w:"+v))
			ret := h.now()
			switch {
			case err == nil:
				h.writesOK.Add(1)
				h.add(porcupine.Operation{ClientId: client, Input: regInput{write: true, value: v}, Call: call, Output: regOutput{}, Return: ret})
			case definitelyNotApplied(err):
			default:
				// Unknown outcome: it may take effect at any later time.
				h.writesUnknown.Add(1)
				h.add(porcupine.Operation{ClientId: client, Input: regInput{write: true, value: v}, Call: call, Output: regOutput{}, Return: math.MaxInt64})
			}
		} else {
			call := h.now()
			err := m.node.ReadBarrier(ctx)
			if err == nil {
				v := m.sm.Register()
				h.readsOK.Add(1)
				h.add(porcupine.Operation{ClientId: client, Input: regInput{}, Call: call, Output: regOutput{value: v}, Return: h.now()})
			} else {
				h.readsFailed.Add(1)
			}
		}
		cancel()
	}
}

func checkLinearizable(t *testing.T, h *history) {
	t.Helper()
	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	began := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 60*time.Second)
	t.Logf("porcupine took %v", time.Since(began))
	switch res {
	case porcupine.Ok:
	case porcupine.Unknown:
		t.Fatalf("linearizability check timed out over %d operations", len(ops))
	default:
		path := filepath.Join(t.TempDir(), "history.html")
		if f, err := os.Create(path); err == nil {
			_ = porcupine.Visualize(registerModel, info, f)
			_ = f.Close()
		}
		t.Fatalf("history of %d operations is not linearizable (visualisation: %s)", len(ops), path)
	}
	t.Logf("%d operations linearizable: writes ok %d, unknown %d; reads ok %d, failed %d",
		len(ops), h.writesOK.Load(), h.writesUnknown.Load(), h.readsOK.Load(), h.readsFailed.Load())
}

// TestLinearizableWithLeaderPartitionAndHeal runs concurrent writers and
// readers on every member while the leader is cut off from the others, a
// new leader is elected, and the partition heals during the writes (the
// scenario of hashicorp/raft issue #695), twice.
func TestLinearizableWithLeaderPartitionAndHeal(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{})
	h := &history{start: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := 0
	for _, m := range c.members {
		for range 2 {
			id := client
			client++
			wg.Go(func() { runClient(m, id, h, stop) })
		}
	}
	// Each phase lasts until the clients completed some more operations.
	settle := func() {
		t.Helper()
		target := h.writesOK.Load() + h.readsOK.Load() + 400
		waitFor(t, 30*time.Second, "client progress", func() bool {
			return h.writesOK.Load()+h.readsOK.Load() >= target
		})
	}
	settle()
	rounds := 2
	if testing.Short() {
		rounds = 1
	}
	for round := range rounds {
		old := c.waitLeader(nil)
		c.fab.Isolate(old.name)
		rest := c.followers(old)
		newLeader := c.waitLeader(rest)
		t.Logf("round %d: isolated leader %s, new leader %s", round, old.name, newLeader.name)
		settle()
		c.fab.HealAll()
		c.waitLeader(nil)
		settle()
	}
	close(stop)
	wg.Wait()
	if h.writesOK.Load() == 0 || h.readsOK.Load() == 0 {
		t.Fatalf("too little happened: %d writes, %d reads succeeded", h.writesOK.Load(), h.readsOK.Load())
	}
	checkLinearizable(t, h)
	c.waitConverged()
}

// TestFollowerReadSeesAcknowledgedWrite: a write acknowledged anywhere is
// visible to a read barrier started afterwards on any member.
func TestFollowerReadSeesAcknowledgedWrite(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{})
	ctx := testCtx(t, 30*time.Second)
	for i := range 60 {
		writer := c.members[i%3]
		reader := c.members[(i+1)%3]
		v := fmt.Sprintf("v%d", i)
		proposeRetry(t, ctx, writer, []byte("w:"+v))
		readBarrierRetry(t, ctx, reader)
		if got := reader.sm.Register(); got != v {
			t.Fatalf("read on %s after write %q acknowledged by %s returned %q", reader.name, v, writer.name, got)
		}
	}
}

// TestReadBarriersShareLeadershipConfirmation: many concurrent read
// barriers, on the leader and forwarded from followers, are answered by
// far fewer heartbeat rounds.
func TestReadBarriersShareLeadershipConfirmation(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{})
	ctx := testCtx(t, 30*time.Second)
	leader := c.waitLeader(nil)
	if err := leader.node.ReadBarrier(ctx); err != nil { // the post-election barrier
		t.Fatal(err)
	}
	before := leader.node.readRounds.Load()
	const reads = 300
	var wg sync.WaitGroup
	for i := range reads {
		m := c.members[i%3]
		wg.Go(func() {
			// Leadership may move on a loaded machine; that is not the
			// subject here.
			for {
				err := m.node.ReadBarrier(ctx)
				if err == nil {
					return
				}
				if !errors.Is(err, ErrNoLeader) || ctx.Err() != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rounds := leader.node.readRounds.Load() - before
	t.Logf("%d read barriers, %d leadership confirmations", reads, rounds)
	if rounds == 0 || rounds > reads/3 {
		t.Fatalf("%d confirmations for %d concurrent reads: not shared", rounds, reads)
	}
}
