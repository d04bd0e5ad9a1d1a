package mvcc_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/mvcc"
)

// refKV is the reference model's view of one key.
type refKV struct {
	value            string
	create, mod, ver int64
}

// refModel keeps a full copy of the key space at every revision.
type refModel struct {
	states     []map[string]refKV // states[rev]
	compactRev int64
}

func newRefModel() *refModel {
	return &refModel{states: []map[string]refKV{nil, {}}}
}

func (m *refModel) rev() int64 { return int64(len(m.states) - 1) }

// apply runs fn on a copy of the current state; if fn changed anything
// the copy becomes the next revision.
func (m *refModel) apply(fn func(cur map[string]refKV, rev int64) bool) {
	next := maps.Clone(m.states[m.rev()])
	if fn(next, m.rev()+1) {
		m.states = append(m.states, next)
	}
}

func refPut(cur map[string]refKV, rev int64, k, v string) {
	old, ok := cur[k]
	if ok {
		cur[k] = refKV{value: v, create: old.create, mod: rev, ver: old.ver + 1}
	} else {
		cur[k] = refKV{value: v, create: rev, mod: rev, ver: 1}
	}
}

func refDelete(cur map[string]refKV, lo, hi string) bool {
	changed := false
	for k := range cur {
		if (hi == "" && k == lo) || (hi != "" && k >= lo && k < hi) {
			delete(cur, k)
			changed = true
		}
	}
	return changed
}

func TestDifferentialAgainstReferenceModel(t *testing.T) {
	steps := 1500
	if testing.Short() {
		steps = 400
	}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			cfg := mvcc.DefaultConfig()
			cfg.CompactionBatch = 7
			e := newEnv(t, cfg)
			runDifferential(t, e, rand.New(rand.NewPCG(seed, 99)), steps)
		})
	}
}

func runDifferential(t *testing.T, e *env, rng *rand.Rand, steps int) {
	m := newRefModel()
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(24)) }
	for step := range steps {
		s := e.s
		switch r := rng.IntN(100); {
		case r < 40:
			k, v := key(), fmt.Sprint(step)
			put(t, s, k, v)
			m.apply(func(cur map[string]refKV, rev int64) bool { refPut(cur, rev, k, v); return true })
		case r < 55:
			lo, hi := key(), ""
			if rng.IntN(2) == 0 {
				hi = key()
			}
			resp := del(t, s, lo, hi)
			var n int64
			m.apply(func(cur map[string]refKV, rev int64) bool {
				before := len(cur)
				changed := refDelete(cur, lo, hi)
				n = int64(before - len(cur))
				return changed
			})
			if resp.Deleted != n {
				t.Fatalf("step %d: delete %s..%s deleted %d, model %d", step, lo, hi, resp.Deleted, n)
			}
		case r < 75:
			// txn: if version(k) == v then put a, delete b else put c.
			k, ver := key(), int64(rng.IntN(3))
			a, b, c := key(), key(), key()
			for a == b {
				b = key()
			}
			v := fmt.Sprint("t", step)
			req := &pb.TxnRequest{
				Compare: []*pb.Compare{{Key: []byte(k), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: ver}}},
				Success: []*pb.RequestOp{opPut(a, v), opDel(b, "")},
				Failure: []*pb.RequestOp{opPut(c, v)},
			}
			resp, err := s.Txn(req)
			if err != nil {
				t.Fatal(err)
			}
			cur := m.states[m.rev()]
			wantOK := cur[k].ver == ver
			if resp.Succeeded != wantOK {
				t.Fatalf("step %d: txn succeeded %v, model %v", step, resp.Succeeded, wantOK)
			}
			m.apply(func(cur map[string]refKV, rev int64) bool {
				if wantOK {
					refPut(cur, rev, a, v)
					refDelete(cur, b, "")
				} else {
					refPut(cur, rev, c, v)
				}
				return true
			})
		case r < 78:
			if m.rev() > m.compactRev+5 {
				at := m.compactRev + 1 + rng.Int64N(m.rev()-m.compactRev)
				if _, err := s.Compact(&pb.CompactionRequest{Revision: at, Physical: rng.IntN(2) == 0}); err != nil {
					t.Fatal(err)
				}
				m.compactRev = at
			}
		case r < 79:
			e.reopen()
		default:
			checkRange(t, step, s, m, rng)
		}
		if s := e.s; s.Rev() != m.rev() {
			t.Fatalf("step %d: store rev %d, model %d", step, s.Rev(), m.rev())
		}
	}
}

func checkRange(t *testing.T, step int, s *mvcc.Store, m *refModel, rng *rand.Rand) {
	rev := max(m.compactRev, 1) + rng.Int64N(m.rev()-max(m.compactRev, 1)+1)
	lo := fmt.Sprintf("k%02d", rng.IntN(24))
	hi := fmt.Sprintf("k%02d", rng.IntN(25))
	limit := int64(rng.IntN(4))
	req := &pb.RangeRequest{Key: []byte(lo), RangeEnd: []byte(hi), Revision: rev, Limit: limit}
	if rng.IntN(4) == 0 {
		req.RangeEnd = nil
	}
	resp, err := s.Range(req)
	if err != nil {
		t.Fatalf("step %d: range @%d: %v", step, rev, err)
	}
	state := m.states[rev]
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(state)) {
		if (req.RangeEnd == nil && k == lo) || (req.RangeEnd != nil && k >= lo && k < hi) {
			keys = append(keys, k)
		}
	}
	count := int64(len(keys))
	more := limit > 0 && count > limit
	if more {
		keys = keys[:limit]
	}
	var want []*mvccKV
	for _, k := range keys {
		r := state[k]
		want = append(want, &mvccKV{Key: []byte(k), Value: []byte(r.value), CreateRevision: r.create, ModRevision: r.mod, Version: r.ver})
	}
	if got, w := kvString(resp.Kvs), kvString(want); got != w || resp.Count != count || resp.More != more {
		t.Fatalf("step %d: range %s..%s @%d limit %d:\n got %s count %d more %v\nwant %s count %d more %v", step, lo, hi, rev, limit, got, resp.Count, resp.More, w, count, more)
	}
	if m.compactRev > 1 {
		if _, err := s.Range(&pb.RangeRequest{Key: []byte(lo), Revision: m.compactRev - 1}); !errors.Is(err, mvcc.ErrCompacted) {
			t.Fatalf("step %d: read below compaction: %v", step, err)
		}
	}
}
