package raftnode

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	waltypes "github.com/hashicorp/raft-wal/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func validConfig() Config {
	cfg := DefaultConfig()
	cfg.ID = 1
	cfg.Dir = "/tmp/x"
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.StateMachine = newTestSM()
	return cfg
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := map[string]func(*Config){
		"member ID":         func(c *Config) { c.ID = 0 },
		"Dir":               func(c *Config) { c.Dir = "" },
		"ListenAddr":        func(c *Config) { c.ListenAddr = "" },
		"StateMachine":      func(c *Config) { c.StateMachine = nil },
		"5×HeartbeatInt":    func(c *Config) { c.ElectionTimeout = 4 * c.HeartbeatInterval },
		"HeartbeatInterval": func(c *Config) { c.HeartbeatInterval = 0 },
		"SnapshotThreshold": func(c *Config) { c.SnapshotThreshold = 0 },
		"MaxProposalBatch":  func(c *Config) { c.MaxProposalBatch = 0 },
		"MaxBatchBytes":     func(c *Config) { c.MaxBatchBytes = 0 },
		"LogStore":          func(c *Config) { c.LogStore = "leveldb" },
		"at least 20ms":     func(c *Config) { c.HeartbeatInterval, c.ElectionTimeout = time.Millisecond, 10*time.Millisecond },
	}
	for want, mutate := range cases {
		cfg := validConfig()
		mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
	}
}

func TestRaftConfigMapping(t *testing.T) {
	cfg := validConfig()
	cfg.ID = 0xabc
	rc := cfg.raftConfig()
	if rc.LocalID != "abc" {
		t.Errorf("LocalID %q, want hex of the member ID", rc.LocalID)
	}
	// etcd defaults 100 ms / 1 s: heartbeats every 50 ms, follower timeout
	// 500 ms (campaign after 0.5–1.5 s), candidate timeout 1 s.
	if rc.HeartbeatTimeout != 500*time.Millisecond || rc.HeartbeatTimeout/10 > cfg.HeartbeatInterval {
		t.Errorf("HeartbeatTimeout %v", rc.HeartbeatTimeout)
	}
	if rc.ElectionTimeout != time.Second || rc.LeaderLeaseTimeout != rc.HeartbeatTimeout {
		t.Errorf("ElectionTimeout %v LeaderLeaseTimeout %v", rc.ElectionTimeout, rc.LeaderLeaseTimeout)
	}
	if !rc.BatchApplyCh || rc.MaxAppendEntries != 256 || !rc.NoSnapshotRestoreOnStart || rc.PreVoteDisabled || rc.CommitTimeout > 10*time.Millisecond {
		t.Errorf("batching and restart settings: %+v", rc)
	}
	// A long heartbeat interval caps raft's heartbeat period at it.
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 20*time.Millisecond, 2*time.Second
	if got := cfg.raftConfig().HeartbeatTimeout; got != 200*time.Millisecond {
		t.Errorf("HeartbeatTimeout %v for 20ms heartbeats", got)
	}
	if id, err := memberID(serverID(0xdeadbeefcafe)); err != nil || id != 0xdeadbeefcafe {
		t.Errorf("member ID round trip: %x, %v", id, err)
	}
	if _, err := memberID("not-hex"); err == nil {
		t.Error("memberID accepted a non-hex server ID")
	}
}

func TestPackedPayloadsRoundTripAndCorruption(t *testing.T) {
	in := [][]byte{nil, []byte("a"), bytes.Repeat([]byte("x"), 300), {}}
	out, err := unpackPayloads(packPayloads(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d payloads back, want %d", len(out), len(in))
	}
	for i := range in {
		if !bytes.Equal(out[i], in[i]) {
			t.Fatalf("payload %d: %q, want %q", i, out[i], in[i])
		}
	}
	good := packPayloads(in)
	for _, bad := range [][]byte{
		nil,
		{9, 0},                         // unknown format
		{packedFormatV1},               // no count
		{packedFormatV1, 200, 1},       // count beyond data
		{packedFormatV1, 1, 5, 'a'},    // length beyond data
		append(bytes.Clone(good), 'z'), // trailing bytes
		good[:len(good)-1],             // truncated
		{packedFormatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // bad varint
	} {
		if _, err := unpackPayloads(bad); err == nil {
			t.Errorf("unpackPayloads(%v) accepted corrupt input", bad)
		}
	}
}

func FuzzUnpackPayloads(f *testing.F) {
	f.Add(packPayloads([][]byte{[]byte("a"), nil}))
	f.Add([]byte{packedFormatV1, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := unpackPayloads(data)
		if err != nil {
			return
		}
		if again := packPayloads(list); !bytes.Equal(again, data) {
			// Non-minimal varints decode too; re-decoding must agree.
			list2, err := unpackPayloads(again)
			if err != nil || len(list2) != len(list) {
				t.Fatalf("re-encoded payloads do not decode alike")
			}
		}
	})
}

func TestMemberChangeAndResultsCodec(t *testing.T) {
	for _, ch := range []memberChange{
		{op: opAdd, id: 0xfeed, addr: "10.0.0.1:2380", learner: true},
		{op: opAdd, id: 0xbeef, addr: "10.0.0.2:2380", strict: true, dryRun: true},
		{op: opRemove, id: 0xcafe, strict: true},
	} {
		got, err := decodeMemberChange(ch.encode())
		if err != nil || got != ch {
			t.Fatalf("member change round trip of %+v: %+v, %v", ch, got, err)
		}
	}
	if _, err := decodeMemberChange([]byte{0x08, 0x09}); err == nil {
		t.Error("unknown operation accepted")
	}
	if _, err := decodeMemberChange([]byte{0x08}); err == nil {
		t.Error("truncated change accepted")
	}

	results := [][]byte{[]byte("ok"), nil, []byte("third")}
	back, index, err := decodeResults(encodeResults(results, 1<<40))
	if err != nil || len(back) != len(results) || index != 1<<40 {
		t.Fatalf("results: %q, index %d, %v", back, index, err)
	}
	for i := range results {
		if string(back[i]) != string(results[i]) {
			t.Errorf("result %d = %q, want %q", i, back[i], results[i])
		}
	}
	if _, _, err := decodeResults(appendList(nil, results)); err == nil {
		t.Error("results without the entry index accepted")
	}
}

func TestErrorsSurviveTheWire(t *testing.T) {
	for _, s := range sentinels {
		wrapped := errors.Join(errors.New("context"), s.err)
		back := fromStatus(toStatus(wrapped))
		if !errors.Is(back, s.err) {
			t.Errorf("%s: %v does not match after a round trip", s.code, back)
		}
	}
	if err := fromStatus(status.Error(codes.DeadlineExceeded, "slow")); !errors.Is(err, ErrTimeout) {
		t.Errorf("deadline status: %v", err)
	}
	if err := fromStatus(status.Error(codes.Unavailable, "down")); status.Code(err) != codes.Unavailable {
		t.Errorf("transport failure lost its code: %v", err)
	}
	if code := status.Code(toStatus(ErrMemberNotFound)); code != codes.NotFound {
		t.Errorf("ErrMemberNotFound → %v", code)
	}
}

func TestHclogAdapter(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := newHclogAdapter(logger, "raft").Named("transport").With("peer", "n2")
	h.Info("hello", "fmt", hclog.Fmt("%d-%s", 7, "x"))
	h.Debug("hidden")
	if h.IsDebug() || !h.IsInfo() || h.GetLevel() != hclog.Info {
		t.Errorf("levels: debug=%v info=%v level=%v", h.IsDebug(), h.IsInfo(), h.GetLevel())
	}
	h.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn}).Print("std line")
	out := buf.String()
	for _, want := range []string{"msg=hello", "component=raft.transport", "peer=n2", "fmt=7-x", "level=WARN msg=\"std line\""} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Error("debug record written at info level")
	}
}

// TestPeerPortServesCallerServicesAndIgnoresJunk: services registered by
// the caller are reachable through DialPeer (before any Node exists on the
// dialling side), raft traffic shares the port, and junk is dropped.
func TestPeerPortServesCallerServicesAndIgnoresJunk(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.ID = 7
	cfg.Dir = dir
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.HeartbeatInterval, cfg.ElectionTimeout = testHeartbeat, testElection
	cfg.StateMachine = newTestSM()
	hs := health.NewServer()
	cfg.RegisterPeerServices = func(s *grpc.Server) { healthpb.RegisterHealthServer(s, hs) }
	n, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })

	// Junk first: an unknown protocol byte and a silent connection.
	for _, first := range [][]byte{{0x7f}, nil} {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if first != nil {
			_, _ = c.Write(first)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("connection with unknown protocol byte not closed: %v", err)
			}
		}
		_ = c.Close()
	}

	cc, err := DialPeer(t.Context(), nil, n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx := testCtx(t, 5*time.Second)
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health over the peer port: %v, %v", resp, err)
	}

	// The node's own service answers on the same port: a lone member that
	// has not bootstrapped has no leader.
	if _, err := (peerClient{cc}).readIndex(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("read index from an unbootstrapped node: %v, want ErrNotLeader", err)
	}
	if err := n.Bootstrap([]Server{{ID: 7, Addr: n.Addr(), Voter: true}}); err != nil {
		t.Fatal(err)
	}
	if err := n.Bootstrap([]Server{{ID: 7, Addr: n.Addr(), Voter: true}}); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("second bootstrap: %v", err)
	}
	waitFor(t, 20*testElection, "the lone member to lead", func() bool { return n.Status().IsLeader })
	lc, leader, err := n.LeaderConn(ctx)
	if err != nil || leader != 7 {
		t.Fatalf("LeaderConn: %v, %x", err, leader)
	}
	idx, err := peerClient{lc}.readIndex(ctx)
	if err != nil {
		t.Fatalf("read index over LeaderConn: %v", err)
	}
	if err := n.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDirInUseAndOtherStoreKind(t *testing.T) {
	c := newTestCluster(t, 1, clusterOptions{})
	m := c.members[0]
	cfg := c.config(m)
	cfg.ListenAddr = "127.0.0.1:0"
	if _, err := Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open of a directory in use: %v", err)
	}
	c.stop(m, false)
	cfg.LogStore = LogStoreBolt
	if _, err := Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "holds a wal log store") {
		t.Fatalf("Open with another store kind: %v", err)
	}
}

func TestNodeGoroutinesEnd(t *testing.T) {
	// Every goroutine a cluster starts ends with Close: count before and
	// after (gRPC and the runtime may take a moment to wind down).
	before := countGoroutines()
	c := newTestCluster(t, 3, clusterOptions{})
	ctx := testCtx(t, 10*time.Second)
	proposeN(t, ctx, c.members[1], "g", 20)
	if err := c.members[2].node.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	c.stopAll()
	waitFor(t, 10*time.Second, "goroutines to end", func() bool { return countGoroutines() <= before+2 })
}

// TestTidyCreateVFSRemovesHalfCreatedSegments: a segment whose creation
// fails after the file was made (here: a size raft-wal's file system
// refuses after creating the file; on a full disk, preallocation) is
// removed, so that raft-wal can create it again; a file that already
// existed is left alone.
func TestTidyCreateVFSRemovesHalfCreatedSegments(t *testing.T) {
	dir := t.TempDir()
	vfs := tidyCreateVFS{walfs.New()}
	if _, err := vfs.Create(dir, "1-1.wal", math.MaxInt32+1); err == nil {
		t.Fatal("create with an oversized preallocation succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "1-1.wal")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-created segment left behind: stat = %v", err)
	}
	f, err := vfs.Create(dir, "1-1.wal", 4096)
	if err != nil {
		t.Fatalf("create again after the failure: %v", err)
	}
	f.Close()
	if _, err := vfs.Create(dir, "1-1.wal", 4096); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create of an existing segment = %v, want ErrExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "1-1.wal")); err != nil {
		t.Fatalf("existing segment removed by a failed create: %v", err)
	}
}

// diskFullOnce is raft-wal's file system, except that while armed, Create
// makes the file and then fails as preallocation does on a full disk.
type diskFullOnce struct {
	waltypes.VFS
	armed bool
}

func (v *diskFullOnce) Create(dir, name string, size uint64) (waltypes.WritableFile, error) {
	if !v.armed {
		return v.VFS.Create(dir, name, size)
	}
	v.armed = false
	f, err := v.VFS.Create(dir, name, 0)
	if err != nil {
		return nil, err
	}
	f.Close()
	return nil, syscall.ENOSPC
}

// TestWALTruncationRetriesAfterFullDisk: a log truncation (raft clearing a
// conflicting suffix) that fails on a full disk succeeds when raft retries
// it once there is room, instead of failing for ever on the segment file
// the failed attempt left ("file exists").
func TestWALTruncationRetriesAfterFullDisk(t *testing.T) {
	dir := t.TempDir()
	vfs := &diskFullOnce{VFS: walfs.New()}
	w, err := wal.Open(dir, wal.WithSegmentSize(64<<10), wal.WithSegmentFiler(segment.NewFiler(dir, tidyCreateVFS{vfs})))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("entry")})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	vfs.armed = true
	if err := w.DeleteRange(6, 10); err == nil {
		t.Fatal("truncation succeeded while its new segment could not be created")
	}
	if err := w.DeleteRange(6, 10); err != nil {
		t.Fatalf("truncation retried with room again: %v", err)
	}
	if err := w.StoreLogs([]*raft.Log{{Index: 6, Term: 2, Type: raft.LogCommand, Data: []byte("new")}}); err != nil {
		t.Fatalf("append after the truncation: %v", err)
	}
	if last, err := w.LastIndex(); err != nil || last != 6 {
		t.Fatalf("last index after truncation and append = %d, %v; want 6", last, err)
	}
}

// TestApplyError: raft's errors become the package's sentinels, the
// caller's cancellation and deadline stay what they are, and anything else
// (the log store failing on a full disk) is ErrLeaderChanged.
func TestApplyError(t *testing.T) {
	deadline, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-deadline.Done()
	for _, tc := range []struct {
		name     string
		err      error
		want     error
		leaderCh bool
	}{
		{"not leader", raft.ErrNotLeader, ErrNotLeader, false},
		{"leadership lost", raft.ErrLeadershipLost, ErrLeaderChanged, true},
		{"shutdown", raft.ErrRaftShutdown, ErrStopped, false},
		{"enqueue timeout", raft.ErrEnqueueTimeout, ErrTimeout, false},
		{"caller's deadline", ctxError(deadline), ErrTimeout, false},
		{"caller cancelled", context.Canceled, context.Canceled, false},
		{"log store failed", syscall.ENOSPC, ErrLeaderChanged, true},
	} {
		got := applyError(tc.err)
		if !errors.Is(got, tc.want) || errors.Is(got, ErrLeaderChanged) != tc.leaderCh {
			t.Errorf("%s: applyError(%v) = %v, want %v (leader changed: %v)", tc.name, tc.err, got, tc.want, tc.leaderCh)
		}
	}
}
