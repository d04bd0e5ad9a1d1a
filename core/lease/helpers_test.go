package lease

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/backend"
)

// fakeRaft is a one-member "cluster": Propose applies the request to the
// lessor at once (as the leader's applier would before answering) and
// records it.
type fakeRaft struct {
	l      *Lessor
	kv     *fakeKV
	leader atomic.Bool

	mu       sync.Mutex
	log      []*pb.InternalRaftRequest
	revoked  map[int64]time.Time
	blockRev chan struct{} // when set, revoke proposals wait for it to close
	failCP   error         // when set, checkpoint proposals fail with it (and are not applied)
}

func (f *fakeRaft) Propose(ctx context.Context, r *pb.InternalRaftRequest) error {
	f.mu.Lock()
	block, failCP := f.blockRev, f.failCP
	f.mu.Unlock()
	if r.LeaseRevoke != nil && block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.LeaseCheckpoint != nil && failCP != nil {
		return failCP
	}
	f.mu.Lock()
	f.log = append(f.log, r)
	f.mu.Unlock()
	var err error
	switch {
	case r.LeaseGrant != nil:
		_, err = f.l.Grant(r.LeaseGrant)
	case r.LeaseRevoke != nil:
		_, err = f.l.Revoke(r.LeaseRevoke.ID, f.kv)
		if err == nil {
			f.mu.Lock()
			f.revoked[r.LeaseRevoke.ID] = time.Now()
			f.mu.Unlock()
		}
	case r.LeaseCheckpoint != nil:
		_, err = f.l.Checkpoint(r.LeaseCheckpoint)
	default:
		err = errors.New("unexpected request")
	}
	return err
}

func (f *fakeRaft) Barrier(context.Context) error { return nil }
func (f *fakeRaft) IsLeader() bool                { return f.leader.Load() }

// revokedAt reports when lease id was revoked through raft.
func (f *fakeRaft) revokedAt(id int64) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.revoked[id]
	return at, ok
}

// checkpoints returns every checkpoint proposed, in order.
func (f *fakeRaft) checkpoints() []*pb.LeaseCheckpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*pb.LeaseCheckpoint
	for _, r := range f.log {
		if r.LeaseCheckpoint != nil {
			out = append(out, r.LeaseCheckpoint.Checkpoints...)
		}
	}
	return out
}

// fakeKV is the store's side of leases: keys with their lease, detached
// on delete as mvcc does.
type fakeKV struct {
	l       *Lessor
	mu      sync.Mutex
	keys    map[string]int64
	rev     int64
	deletes [][]string // keys of each DeleteKeys call
}

func (kv *fakeKV) put(key string, id int64) error {
	if !kv.l.Exists(id) {
		return errors.New("lease not found")
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if old, ok := kv.keys[key]; ok {
		kv.l.Detach(old, []byte(key))
	}
	kv.keys[key] = id
	kv.l.Attach(id, []byte(key))
	kv.rev++
	return nil
}

func (kv *fakeKV) DeleteKeys(keys [][]byte) (int64, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var names []string
	for _, k := range keys {
		if id, ok := kv.keys[string(k)]; ok {
			kv.l.Detach(id, k)
			delete(kv.keys, string(k))
			names = append(names, string(k))
		}
	}
	kv.deletes = append(kv.deletes, names)
	if len(names) > 0 {
		kv.rev++
	}
	return kv.rev, nil
}

func (kv *fakeKV) present() []string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	var out []string
	for k := range kv.keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type harness struct {
	l    *Lessor
	raft *fakeRaft
	kv   *fakeKV
	be   *backend.Backend
}

// newHarness opens a backend in a temp dir and a lessor over it; both are
// closed when the test (or synctest bubble function) calls h.close.
func newHarness(t *testing.T, dir string, edit func(*Config)) *harness {
	t.Helper()
	bcfg := backend.DefaultConfig(filepath.Join(dir, "db"))
	be, err := backend.Open(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRaft{revoked: make(map[int64]time.Time)}
	cfg := DefaultConfig()
	cfg.Raft = f
	if edit != nil {
		edit(&cfg)
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Recover(be); err != nil {
		t.Fatal(err)
	}
	f.l = l
	f.kv = &fakeKV{l: l, keys: make(map[string]int64)}
	return &harness{l: l, raft: f, kv: f.kv, be: be}
}

func (h *harness) close(t *testing.T) {
	t.Helper()
	if err := h.l.Close(); err != nil {
		t.Error(err)
	}
	if err := h.be.Close(); err != nil {
		t.Error(err)
	}
}

// lead makes the lessor's member the leader and waits (in a synctest
// bubble, without time passing) for the promotion.
func (h *harness) lead(t *testing.T) {
	t.Helper()
	h.raft.leader.Store(true)
	h.l.SetLeader(true)
	synctest.Wait()
	if !h.l.IsPrimary() {
		t.Fatal("not promoted")
	}
}

func (h *harness) follow() {
	h.raft.leader.Store(false)
	h.l.SetLeader(false)
}

func (h *harness) grant(t *testing.T, id, ttl int64) {
	t.Helper()
	if err := h.raft.Propose(t.Context(), &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: ttl}}); err != nil {
		t.Fatalf("grant %d: %v", id, err)
	}
}
