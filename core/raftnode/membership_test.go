package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func proposeN(t *testing.T, ctx context.Context, m *testMember, prefix string, count int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() {
			p := fmt.Sprintf("%s-%d", prefix, i)
			checkResult(t, p, proposeRetry(t, ctx, m, []byte(p)))
		})
	}
	wg.Wait()
}

func serverByID(t *testing.T, n *Node, id uint64) (Server, bool) {
	t.Helper()
	servers, err := n.Servers()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.ID == id {
			return s, true
		}
	}
	return Server{}, false
}

// TestLearnerAddCatchUpPromote adds a learner through a follower (the
// change is forwarded), refuses to promote it while it is cut off and far
// behind, then promotes it once it has caught up.
func TestLearnerAddCatchUpPromote(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{})
	ctx := testCtx(t, 60*time.Second)
	leader := c.waitLeader(nil)
	follower := c.followers(leader)[0]
	proposeN(t, ctx, leader, "a", 200)

	learner := c.addMember()
	if has, err := HasState(learner.dir); err != nil || has {
		t.Fatalf("HasState on a fresh member = %v, %v", has, err)
	}
	c.start(learner)
	if _, err := HasState(learner.dir); err == nil {
		t.Fatal("HasState succeeded on a directory a running node holds")
	}
	c.fab.Isolate(learner.name)
	if err := follower.node.AddMember(ctx, learner.id, learner.addr, true); err != nil {
		t.Fatalf("add learner via follower: %v", err)
	}
	if err := follower.node.AddMember(ctx, learner.id, learner.addr, true); !errors.Is(err, ErrMemberExists) {
		t.Fatalf("second add: %v, want ErrMemberExists", err)
	}
	s, ok := serverByID(t, leader.node, learner.id)
	if !ok || s.Voter || s.Addr != learner.addr {
		t.Fatalf("learner in configuration: %+v, %v", s, ok)
	}
	// Cut off and far behind: not ready.
	if err := leader.node.PromoteMember(ctx, learner.id); !errors.Is(err, ErrLearnerNotReady) {
		t.Fatalf("promote isolated learner: %v, want ErrLearnerNotReady", err)
	}
	if err := leader.node.TransferLeadership(ctx, learner.id); !errors.Is(err, ErrBadTransferee) {
		t.Fatalf("transfer to learner: %v, want ErrBadTransferee", err)
	}
	c.fab.HealAll()
	// Reachable but still behind (it needs the whole log): the check asks
	// the learner itself. Wait for it to catch up, then promote through a
	// follower.
	waitFor(t, 10*time.Second, "learner to catch up", func() bool {
		return learner.node.Status().AppliedIndex >= leader.node.Status().AppliedIndex
	})
	if err := follower.node.PromoteMember(ctx, learner.id); err != nil {
		t.Fatalf("promote caught-up learner: %v", err)
	}
	if s, _ := serverByID(t, leader.node, learner.id); !s.Voter {
		t.Fatalf("learner not a voter after promotion: %+v", s)
	}
	if err := leader.node.PromoteMember(ctx, learner.id); !errors.Is(err, ErrNotLearner) {
		t.Fatalf("second promotion: %v, want ErrNotLearner", err)
	}
	if err := leader.node.PromoteMember(ctx, 0xdead); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("promote unknown: %v, want ErrMemberNotFound", err)
	}
	proposeN(t, ctx, learner, "b", 50)
	c.waitConverged()
}

// TestRemoveMember removes a follower; the rest continue and the removed
// node stops.
func TestRemoveMember(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{})
	ctx := testCtx(t, 30*time.Second)
	leader := c.waitLeader(nil)
	fs := c.followers(leader)
	gone, stay := fs[0], fs[1]
	// Remove through the other follower (forwarded to the leader).
	if err := stay.node.RemoveMember(ctx, gone.id); err != nil {
		t.Fatal(err)
	}
	if _, ok := serverByID(t, leader.node, gone.id); ok {
		t.Fatal("removed member still in the configuration")
	}
	if err := leader.node.RemoveMember(ctx, gone.id); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("second removal: %v, want ErrMemberNotFound", err)
	}
	// The removed node finds out and stops its raft.
	select {
	case <-gone.node.Removed():
	case <-time.After(10 * testElection):
		t.Fatalf("removed member did not notice its removal within %v", 10*testElection)
	}
	if _, err := gone.node.Propose(ctx, []byte("x")); !errors.Is(err, ErrRemoved) {
		t.Fatalf("proposal on the removed member: %v, want ErrRemoved", err)
	}
	if err := gone.node.ReadBarrier(ctx); !errors.Is(err, ErrRemoved) {
		t.Fatalf("read barrier on the removed member: %v, want ErrRemoved", err)
	}
	select {
	case <-stay.node.Removed():
		t.Fatal("a remaining member believes it was removed")
	default:
	}
	proposeN(t, ctx, stay, "after", 30)
	c.waitConverged(leader, stay)
	servers, err := leader.node.Servers()
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers after removal: %+v, %v", servers, err)
	}
}

// TestTransferLeadership moves leadership on request (also forwarded from
// a follower) and on a graceful Close of the leader.
func TestTransferLeadership(t *testing.T) {
	var mu sync.Mutex
	changes := map[uint64][]bool{} // member → its OnLeaderChange calls, in order
	c := newTestClusterWithHook(t, 3, func(id uint64) func(bool, uint64) {
		return func(isLeader bool, term uint64) {
			mu.Lock()
			defer mu.Unlock()
			changes[id] = append(changes[id], isLeader)
		}
	})
	ctx := testCtx(t, 30*time.Second)
	leader := c.waitLeader(nil)
	fs := c.followers(leader)
	target := fs[0]
	// Asked on the other follower: forwarded to the leader.
	if err := fs[1].node.TransferLeadership(ctx, target.id); err != nil {
		t.Fatal(err)
	}
	if got := c.waitLeader(nil); got != target {
		t.Fatalf("leader after transfer is %s, want %s", got.name, target.name)
	}
	if err := target.node.TransferLeadership(ctx, target.id); err != nil {
		t.Fatalf("transfer to the current leader: %v", err)
	}
	if err := target.node.TransferLeadership(ctx, 0xbeef); !errors.Is(err, ErrMemberNotFound) {
		t.Fatalf("transfer to unknown member: %v, want ErrMemberNotFound", err)
	}
	proposeN(t, ctx, leader, "x", 20)

	// A graceful Close of the leader hands leadership over first: the rest
	// have a leader at once, without an election timeout.
	closing := c.waitLeader(nil)
	rest := c.followers(closing)
	c.stop(closing, false)
	for _, m := range rest {
		if st := m.node.Status(); st.Leader == 0 || st.Leader == closing.id {
			// It may take a moment for the new leader's first heartbeat.
			waitFor(t, testElection/2, "new leader after a graceful close", func() bool {
				st := m.node.Status()
				return st.Leader != 0 && st.Leader != closing.id
			})
		}
	}
	proposeN(t, ctx, rest[0], "y", 20)

	mu.Lock()
	defer mu.Unlock()
	for id, seq := range changes {
		for i := 1; i < len(seq); i++ {
			if seq[i] == seq[i-1] {
				t.Errorf("member %x: OnLeaderChange sequence %v repeats a state", id, seq)
			}
		}
		if len(seq) > 0 && !seq[0] {
			t.Errorf("member %x: first OnLeaderChange was a loss: %v", id, seq)
		}
	}
	if len(changes[target.id]) < 2 || len(changes[leader.id]) < 2 {
		t.Errorf("expected gain and loss notifications for %s and %s: %v", leader.name, target.name, changes)
	}
}

// TestSnapshotInstallToLaggingAndNewMembers: with a compacted log, a
// follower that was cut off and a new learner both catch up by snapshot.
func TestSnapshotInstallToLaggingAndNewMembers(t *testing.T) {
	for _, kind := range []LogStoreKind{LogStoreWAL, LogStoreBolt} {
		t.Run(string(kind), func(t *testing.T) { testSnapshotInstall(t, kind) })
	}
}

func testSnapshotInstall(t *testing.T, kind LogStoreKind) {
	c := newTestCluster(t, 3, clusterOptions{
		logStore: kind, snapshotThreshold: 32, trailingLogs: 8, snapshotInterval: 20 * time.Millisecond,
		// raft-wal drops compacted entries only with whole segments.
		walSegmentSize: 1 << 10,
	})
	ctx := testCtx(t, 60*time.Second)
	leader := c.waitLeader(nil)
	lagging := c.followers(leader)[0]
	c.fab.Isolate(lagging.name)
	c.waitLeader(c.followers(lagging))
	leader = c.waitLeader(c.followers(lagging))
	// One at a time, so that each is its own raft entry.
	for i := range 150 {
		proposeRetry(t, ctx, leader, fmt.Appendf(nil, "s%d", i))
	}
	// The leader's log no longer holds what the lagging follower needs.
	waitFor(t, 10*time.Second, "log compaction on the leader", func() bool {
		first, err := leader.node.stores.log.FirstIndex()
		return err == nil && first > lagging.node.Status().LastLogIndex+1
	})
	c.fab.HealAll()
	c.waitConverged()
	if lagging.sm.Restores() == 0 {
		t.Fatalf("lagging follower caught up without installing a snapshot")
	}

	learner := c.addMember()
	c.start(learner)
	if err := leader.node.AddMember(ctx, learner.id, learner.addr, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "new learner to catch up", func() bool {
		return learner.node.Status().AppliedIndex >= leader.node.Status().AppliedIndex
	})
	if learner.sm.Restores() == 0 {
		t.Fatalf("new learner caught up without a snapshot")
	}
	proposeN(t, ctx, leader, "after", 20)
	c.waitConverged()
}

// strictContactWindow is the contact window of test clusters with the
// strict check: several heartbeat periods, well below an isolation's
// length in TestStrictReconfigCheck.
const strictContactWindow = 20 * testHeartbeat

// TestStrictReconfigCheck: with one voter of three out of contact, the
// leader refuses to add a member (even a learner, even as a dry run) and
// to remove a voter in contact, through a follower too; it removes the
// voter out of contact. Once every voter is in contact again, adds pass.
func TestStrictReconfigCheck(t *testing.T) {
	c := newTestCluster(t, 3, clusterOptions{strict: true})
	ctx := testCtx(t, 30*time.Second)
	leader := c.waitLeader(nil)
	fs := c.followers(leader)
	down, up := fs[0], fs[1]
	spare := c.addMember()
	c.start(spare)

	if err := up.node.CheckAddMember(ctx, spare.id, spare.addr, true); err != nil {
		t.Fatalf("dry-run add with every voter in contact: %v", err)
	}
	if _, ok := serverByID(t, leader.node, spare.id); ok {
		t.Fatal("a dry run changed the configuration")
	}

	c.fab.Isolate(down.name)
	time.Sleep(2 * strictContactWindow)
	if err := leader.node.AddMember(ctx, spare.id, spare.addr, true); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("add with a voter out of contact: %v, want ErrUnhealthy", err)
	}
	if err := up.node.CheckAddMember(ctx, spare.id, spare.addr, false); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("dry-run add through a follower with a voter out of contact: %v, want ErrUnhealthy", err)
	}
	if err := up.node.RemoveMember(ctx, up.id); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("removing a voter in contact while another is out: %v, want ErrUnhealthy", err)
	}
	if _, ok := serverByID(t, leader.node, up.id); !ok {
		t.Fatal("refused removal changed the configuration")
	}
	if err := up.node.RemoveMember(ctx, down.id); err != nil {
		t.Fatalf("removing the voter out of contact: %v", err)
	}
	if err := leader.node.AddMember(ctx, spare.id, spare.addr, true); err != nil {
		t.Fatalf("add with every remaining voter in contact: %v", err)
	}
}
