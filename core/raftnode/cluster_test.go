package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordkv/concord/core/raftnode/faultnet"
)

// Timings of the test clusters: short enough for fast tests, long enough
// for two shared cores under the race detector.
const (
	testHeartbeat = 50 * time.Millisecond
	testElection  = 500 * time.Millisecond
)

type clusterOptions struct {
	logStore          LogStoreKind
	persist           bool // state machines persist to files (restart tests)
	snapshotThreshold uint64
	trailingLogs      uint64
	snapshotInterval  time.Duration
	logger            *slog.Logger
	onLeaderChange    func(id uint64) func(isLeader bool, term uint64)
	walSegmentSize    int
	heartbeat         time.Duration // default testHeartbeat
	election          time.Duration // default testElection
	strict            bool          // StrictReconfigCheck, with a short contact window
}

// testCluster is an in-process cluster over loopback TCP through a
// faultnet fabric.
type testCluster struct {
	t       testing.TB
	opts    clusterOptions
	fab     *faultnet.Fabric
	base    string
	mu      sync.Mutex // guards members
	members []*testMember
}

type testMember struct {
	name   string
	id     uint64
	dir    string
	smPath string
	addr   string // fixed after the first start so restarts keep it
	host   *faultnet.Host
	sm     *testSM
	node   *Node // nil while stopped
}

func newTestCluster(t testing.TB, size int, opts clusterOptions) *testCluster {
	t.Helper()
	return newTestClusterOpts(t, size, opts)
}

// newTestClusterWithHook starts a cluster whose members report leadership
// changes to hook(memberID).
func newTestClusterWithHook(t testing.TB, size int, hook func(id uint64) func(bool, uint64)) *testCluster {
	t.Helper()
	return newTestClusterOpts(t, size, clusterOptions{onLeaderChange: hook})
}

func newTestClusterOpts(t testing.TB, size int, opts clusterOptions) *testCluster {
	t.Helper()
	if opts.logStore == "" {
		opts.logStore = LogStoreWAL
	}
	if opts.logger == nil && os.Getenv("RAFTNODE_TEST_LOG") != "" {
		opts.logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c := &testCluster{t: t, opts: opts, fab: faultnet.New(), base: t.TempDir()}
	t.Cleanup(c.stopAll)
	for range size {
		c.addMember()
	}
	servers := make([]Server, 0, size)
	for _, m := range c.members {
		c.start(m)
		servers = append(servers, Server{ID: m.id, Addr: m.addr, Voter: true})
	}
	for _, m := range c.members {
		// A member may already have received the configuration from the
		// first leader: that is the documented no-op.
		if err := m.node.Bootstrap(servers); err != nil && !errors.Is(err, ErrAlreadyBootstrapped) {
			t.Fatalf("bootstrap %s: %v", m.name, err)
		}
	}
	c.waitLeader(nil)
	return c
}

// addMember creates a member (not started).
func (c *testCluster) addMember() *testMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.members)
	name := fmt.Sprintf("n%d", i+1)
	m := &testMember{
		name:   name,
		id:     0xc0de0 + uint64(i+1),
		dir:    filepath.Join(c.base, name, "raft"),
		smPath: filepath.Join(c.base, name, "sm.jsonl"),
		host:   c.fab.Host(name),
	}
	c.members = append(c.members, m)
	return m
}

func (c *testCluster) config(m *testMember) Config {
	cfg := DefaultConfig()
	cfg.ID = m.id
	cfg.Dir = m.dir
	cfg.ListenAddr = "127.0.0.1:0"
	if m.addr != "" {
		cfg.ListenAddr = m.addr
	}
	cfg.Network = m.host
	cfg.HeartbeatInterval = testHeartbeat
	cfg.ElectionTimeout = testElection
	if c.opts.election > 0 {
		cfg.HeartbeatInterval, cfg.ElectionTimeout = c.opts.heartbeat, c.opts.election
	}
	cfg.LogStore = c.opts.logStore
	cfg.StateMachine = m.sm
	if c.opts.snapshotThreshold > 0 {
		cfg.SnapshotThreshold = c.opts.snapshotThreshold
	}
	if c.opts.trailingLogs > 0 {
		cfg.TrailingLogs = c.opts.trailingLogs
	}
	if c.opts.snapshotInterval > 0 {
		cfg.SnapshotInterval = c.opts.snapshotInterval
	}
	cfg.Logger = c.opts.logger
	cfg.walSegmentSize = c.opts.walSegmentSize
	if c.opts.strict {
		cfg.StrictReconfigCheck = true
		cfg.contactWindow = strictContactWindow
	}
	if c.opts.onLeaderChange != nil {
		cfg.OnLeaderChange = c.opts.onLeaderChange(m.id)
	}
	return cfg
}

// start opens m's state machine and node.
func (c *testCluster) start(m *testMember) {
	c.t.Helper()
	if c.opts.persist {
		sm, err := openTestSM(m.smPath)
		if err != nil {
			c.t.Fatal(err)
		}
		m.sm = sm
	} else if m.sm == nil {
		m.sm = newTestSM()
	}
	n, err := Open(context.Background(), c.config(m))
	if err != nil {
		c.t.Fatalf("open %s: %v", m.name, err)
	}
	m.node = n
	m.addr = n.Addr()
}

// stop closes m gracefully (kill=false) or like a crash (kill=true).
func (c *testCluster) stop(m *testMember, kill bool) {
	c.t.Helper()
	if m.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.node.shutdown(ctx, !kill); err != nil {
		c.t.Errorf("close %s: %v", m.name, err)
	}
	m.node = nil
	if m.sm != nil {
		_ = m.sm.Close()
	}
	if c.opts.persist {
		m.sm = nil
	}
}

func (c *testCluster) stopAll() {
	var wg sync.WaitGroup
	for _, m := range c.members {
		wg.Go(func() { c.stop(m, true) })
	}
	wg.Wait()
}

// running returns the started members.
func (c *testCluster) running() []*testMember {
	var out []*testMember
	for _, m := range c.members {
		if m.node != nil {
			out = append(out, m)
		}
	}
	return out
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLeader waits until one running member (of among, or of all running
// members when among is nil) leads and all of among agree on it.
func (c *testCluster) waitLeader(among []*testMember) *testMember {
	c.t.Helper()
	if among == nil {
		among = c.running()
	}
	var leader *testMember
	waitFor(c.t, 40*max(testElection, c.opts.election), "a leader", func() bool {
		leader = nil
		var seen uint64
		for _, m := range among {
			st := m.node.Status()
			if st.Leader == 0 || (seen != 0 && st.Leader != seen) {
				return false
			}
			seen = st.Leader
			if st.IsLeader {
				leader = m
			}
		}
		return leader != nil
	})
	return leader
}

func (c *testCluster) followers(leader *testMember) []*testMember {
	var out []*testMember
	for _, m := range c.running() {
		if m != leader {
			out = append(out, m)
		}
	}
	return out
}

// waitConverged waits until every running member applied the same index
// as the others and then checks they hold identical records.
func (c *testCluster) waitConverged(members ...*testMember) {
	c.t.Helper()
	if len(members) == 0 {
		members = c.running()
	}
	describe := func() string {
		var b strings.Builder
		for _, m := range members {
			fmt.Fprintf(&b, "\n%s: %+v records=%d", m.name, m.node.Status(), len(m.sm.Records()))
		}
		return b.String()
	}
	defer func() {
		if c.t.Failed() {
			c.t.Log("member states:", describe())
		}
	}()
	// Raft's no-op and barrier entries never reach the state machine, so
	// the applied index may stay below the commit index; members agree
	// when their commit and applied indexes and records are equal.
	waitFor(c.t, 10*time.Second, "members to converge", func() bool {
		first := members[0].node.Status()
		want := len(members[0].sm.Records())
		for _, m := range members {
			st := m.node.Status()
			if st.CommitIndex != first.CommitIndex || st.AppliedIndex != first.AppliedIndex || len(m.sm.Records()) != want {
				return false
			}
		}
		return true
	})
	c.checkSame(members...)
}

// checkSame fails unless every member's state machine holds the same
// records in the same order and saw no contract violations.
func (c *testCluster) checkSame(members ...*testMember) {
	c.t.Helper()
	if len(members) == 0 {
		members = c.running()
	}
	want := members[0].sm.Records()
	for _, m := range members {
		if v := m.sm.Violations(); len(v) > 0 {
			c.t.Errorf("%s: state machine contract violations: %v", m.name, v[:min(len(v), 5)])
		}
		got := m.sm.Records()
		if !slices.Equal(got, want) {
			c.t.Fatalf("%s holds %d records, %s holds %d; first difference at %d",
				m.name, len(got), members[0].name, len(want), firstDiff(got, want))
		}
	}
	for i := 1; i < len(want); i++ {
		if want[i].Index < want[i-1].Index {
			c.t.Fatalf("records out of log order at %d: %d after %d", i, want[i].Index, want[i-1].Index)
		}
	}
}

func firstDiff(a, b []testRecord) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// proposeRetry proposes payload on m, retrying while leadership moves
// (for tests whose subject is not leader changes; a retried payload may
// be applied twice). It may be called from any goroutine: a failure is
// reported with Errorf and returns nil.
func proposeRetry(t testing.TB, ctx context.Context, m *testMember, payload []byte) []byte {
	t.Helper()
	for {
		res, err := m.node.Propose(ctx, payload)
		if err == nil {
			return res
		}
		if ctx.Err() != nil || !(errors.Is(err, ErrLeaderChanged) || errors.Is(err, ErrNoLeader)) {
			t.Errorf("propose %q on %s: %v", payload, m.name, err)
			return nil
		}
		t.Logf("propose %q on %s: %v; retrying", payload, m.name, err)
	}
}

// readBarrierRetry runs a read barrier on m, retrying while no leader can
// answer (for tests whose subject is not leader changes).
func readBarrierRetry(t testing.TB, ctx context.Context, m *testMember) {
	t.Helper()
	for {
		err := m.node.ReadBarrier(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil || !errors.Is(err, ErrNoLeader) {
			t.Fatalf("read barrier on %s: %v", m.name, err)
		}
	}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func countGoroutines() int { return runtime.NumGoroutine() }
