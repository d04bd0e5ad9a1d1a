package mvcc_test

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/concordkv/concord/core/backend"
	"github.com/concordkv/concord/core/mvcc"
)

// rowCount counts the key bucket's rows.
func rowCount(t *testing.T, be *backend.Backend) int {
	t.Helper()
	kvs, err := be.Range(mvcc.KeyBucket, nil, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	return len(kvs)
}

// history writes a fixed sequence touching create/update/delete/recreate.
func history(t testing.TB, s *mvcc.Store) {
	put(t, s, "a", "1") // 2
	put(t, s, "a", "2") // 3
	put(t, s, "b", "1") // 4
	del(t, s, "a", "")  // 5
	put(t, s, "a", "3") // 6
	put(t, s, "c", "1") // 7
	del(t, s, "c", "")  // 8
	put(t, s, "b", "2") // 9
	put(t, s, "d", "1") // 10
	del(t, s, "d", "")  // 11
}

func TestCompaction(t *testing.T) {
	e := newEnv(t, mvcc.DefaultConfig())
	s := e.s
	history(t, s)
	if rowCount(t, e.be) != 10 {
		t.Fatalf("rows before %d", rowCount(t, e.be))
	}
	for _, tc := range []struct {
		rev  int64
		want error
	}{{0, mvcc.ErrCompacted}, {12, mvcc.ErrFutureRev}} {
		if _, err := s.Compact(&pb.CompactionRequest{Revision: tc.rev}); !errors.Is(err, tc.want) {
			t.Fatalf("compact %d: %v, want %v", tc.rev, err, tc.want)
		}
	}
	resp, err := s.Compact(&pb.CompactionRequest{Revision: 8, Physical: true})
	if err != nil || resp.Header.Revision != 11 || s.Rev() != 11 || s.CompactRevision() != 8 {
		t.Fatalf("compact: %v %v rev %d compact %d", resp, err, s.Rev(), s.CompactRevision())
	}
	// Kept: a@6 (live), b@4 (newest <= 8 of b), c's tombstone@8 (exactly
	// at the compact revision), and everything after 8: b@9, d@10, d@11t.
	if n := rowCount(t, e.be); n != 6 {
		t.Fatalf("rows after compaction %d, want 6", n)
	}
	if _, err := s.Compact(&pb.CompactionRequest{Revision: 8}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("compact again: %v", err)
	}
	// Reads below the compact revision fail, at and above work.
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("a"), Revision: 7}); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("read at 7: %v", err)
	}
	for rev, want := range map[int64]string{8: "a=3@6/6/1 b=1@4/4/1", 9: "a=3@6/6/1 b=2@4/9/2", 10: "a=3@6/6/1 b=2@4/9/2 d=1@10/10/1", 11: "a=3@6/6/1 b=2@4/9/2"} {
		r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
		if err != nil {
			t.Fatalf("read at %d: %v", rev, err)
		}
		if got := kvString(r.Kvs); got != want {
			t.Errorf("at %d: %q, want %q", rev, got, want)
		}
	}
	// Versions continue across the compaction.
	put(t, s, "b", "3")
	if kv := get(t, s, "b", 0); kv.Version != 3 || kv.CreateRevision != 4 {
		t.Fatalf("b after compaction: %v", kv)
	}
	// Events below the compact revision fail; at it, its events are there.
	if _, _, err := s.Events([]byte{0}, []byte{0}, 7, 0, 0); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("events from 7: %v", err)
	}
	evs, next, err := s.Events([]byte{0}, []byte{0}, 8, 0, 0)
	if err != nil || next != 13 {
		t.Fatalf("events from 8: next %d err %v", next, err)
	}
	if got := eventsString(evs); got != "8:DELETE c 9:PUT b=2 10:PUT d=1 11:DELETE d 12:PUT b=3" {
		t.Fatalf("events from 8: %s", got)
	}
	// A later compaction removes the tombstone kept at 8 and the
	// tombstoned generation of d.
	if _, err := s.Compact(&pb.CompactionRequest{Revision: 12, Physical: true}); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, e.be); n != 2 {
		t.Fatalf("rows after second compaction %d, want 2 (a@6, b@12)", n)
	}
}

func eventsString(evs []*mvccpb.Event) string {
	s := ""
	for i, e := range evs {
		if i > 0 {
			s += " "
		}
		if e.Type == mvccpb.Event_PUT {
			s += fmt.Sprintf("%d:PUT %s=%s", e.Kv.ModRevision, e.Kv.Key, e.Kv.Value)
		} else {
			s += fmt.Sprintf("%d:DELETE %s", e.Kv.ModRevision, e.Kv.Key)
		}
	}
	return s
}

func TestEvents(t *testing.T) {
	s := newStore(t)
	history(t, s)
	if _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("x", "1"), opPut("a", "4"), opDel("b", "")}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key, end string
		from, to int64
		limit    int
		want     string
		next     int64
	}{
		{"a", "", 1, 0, 0, "2:PUT a=1 3:PUT a=2 5:DELETE a 6:PUT a=3 12:PUT a=4", 13},
		{"a", "c", 5, 9, 0, "5:DELETE a 6:PUT a=3 9:PUT b=2", 10},
		{"\x00", "\x00", 11, 0, 0, "11:DELETE d 12:PUT x=1 12:PUT a=4 12:DELETE b", 13},
		{"\x00", "\x00", 2, 0, 2, "2:PUT a=1 3:PUT a=2", 4},
		{"\x00", "\x00", 11, 0, 2, "11:DELETE d 12:PUT x=1 12:PUT a=4 12:DELETE b", 13}, // a revision is never split
		{"a", "", 13, 0, 0, "", 13},
	}
	for _, tc := range tests {
		var end []byte
		if tc.end != "" {
			end = []byte(tc.end)
		}
		evs, next, err := s.Events([]byte(tc.key), end, tc.from, tc.to, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := eventsString(evs); got != tc.want || next != tc.next {
			t.Errorf("events %q..%q %d..%d limit %d: %q next %d, want %q next %d", tc.key, tc.end, tc.from, tc.to, tc.limit, got, next, tc.want, tc.next)
		}
	}
}

func TestHashKV(t *testing.T) {
	a, b := newStore(t), newStore(t)
	history(t, a)
	history(t, b)
	ha, ra, ca, err := a.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	hb, rb, cb, _ := b.HashKV(0)
	if ha != hb || ra != 11 || rb != 11 || ca != 0 || cb != 0 {
		t.Fatalf("same ops: %x@%d/%d vs %x@%d/%d", ha, ra, ca, hb, rb, cb)
	}
	h5a, _, _, _ := a.HashKV(5)
	if h5a == ha {
		t.Fatal("hash at 5 equals hash at 11")
	}
	// Same revision count, different content.
	put(t, a, "k", "1")
	put(t, b, "k", "2")
	ha, _, _, _ = a.HashKV(0)
	hb, _, _, _ = b.HashKV(0)
	if ha == hb {
		t.Fatal("different values, equal hashes")
	}
	// Historical hashes still agree.
	h5b, _, _, _ := b.HashKV(5)
	if h5a != h5b {
		t.Fatal("hash at 5 differs")
	}
	if _, _, _, err := a.HashKV(99); !errors.Is(err, mvcc.ErrFutureRev) {
		t.Fatalf("future: %v", err)
	}
	// Physical progress of a compaction does not change the hash: a
	// store compacted physically and one only scheduled agree.
	c, d := newStore(t), newStore(t)
	history(t, c)
	history(t, d)
	if _, err := c.Compact(&pb.CompactionRequest{Revision: 8, Physical: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Compact(&pb.CompactionRequest{Revision: 8}); err != nil {
		t.Fatal(err)
	}
	hc, _, cc, _ := c.HashKV(0)
	hd, _, cd, _ := d.HashKV(0)
	if hc != hd || cc != 8 || cd != 8 {
		t.Fatalf("compacted stores: %x/%d vs %x/%d", hc, cc, hd, cd)
	}
	if _, _, _, err := c.HashKV(7); !errors.Is(err, mvcc.ErrCompacted) {
		t.Fatalf("hash below compaction: %v", err)
	}
}

// snapshotOf captures what must survive a restart.
func snapshotOf(t *testing.T, s *mvcc.Store) string {
	t.Helper()
	h, _, _, err := s.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("rev=%d compact=%d hash=%x", s.Rev(), s.CompactRevision(), h)
	for rev := max(s.CompactRevision(), 1); rev <= s.Rev(); rev++ {
		r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
		if err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("\n%d: %s", rev, kvString(r.Kvs))
	}
	return out
}

func TestRestartRebuildsIdenticalState(t *testing.T) {
	leases := newFakeLeases(3)
	cfg := mvcc.DefaultConfig()
	cfg.Leases = leases
	e := newEnv(t, cfg)
	history(t, e.s)
	if _, err := e.s.Put(&pb.PutRequest{Key: []byte("leased"), Value: []byte("v"), Lease: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Compact(&pb.CompactionRequest{Revision: 6, Physical: true}); err != nil {
		t.Fatal(err)
	}
	put(t, e.s, "after", "x")
	before := snapshotOf(t, e.s)

	leases.attached = map[int64]map[string]bool{}
	e.reopen()
	if after := snapshotOf(t, e.s); after != before {
		t.Fatalf("after restart:\n%s\nbefore:\n%s", after, before)
	}
	if got := leases.keys(3); len(got) != 1 || got[0] != "leased" {
		t.Fatalf("leases re-attached on open: %v", got)
	}
	// Revisions continue where they were.
	if r := put(t, e.s, "next", "x"); r.Header.Revision != 14 {
		t.Fatalf("first put after restart at %d, want 14", r.Header.Revision)
	}
	// An empty store reopens at revision 1.
	empty := newEnv(t, mvcc.DefaultConfig())
	empty.reopen()
	if empty.s.Rev() != 1 {
		t.Fatalf("empty store reopened at %d", empty.s.Rev())
	}
}

func TestInterruptedCompactionResumes(t *testing.T) {
	cfg := mvcc.DefaultConfig()
	cfg.CompactionBatch = 1
	e := newEnv(t, cfg)
	ref := newStore(t)
	for i := range 300 {
		for _, s := range []*mvcc.Store{e.s, ref} {
			put(t, s, fmt.Sprintf("k%03d", i%50), fmt.Sprint(i))
		}
	}
	if _, err := ref.Compact(&pb.CompactionRequest{Revision: 200, Physical: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Compact(&pb.CompactionRequest{Revision: 200}); err != nil {
		t.Fatal(err)
	}
	e.reopen() // most likely interrupts the compaction mid-way
	if e.s.CompactRevision() != 200 {
		t.Fatalf("compact revision after restart %d", e.s.CompactRevision())
	}
	// Physical compaction at a later revision waits for the resumed one.
	for _, s := range []*mvcc.Store{e.s, ref} {
		if _, err := s.Compact(&pb.CompactionRequest{Revision: 250, Physical: true}); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := snapshotOf(t, e.s), snapshotOf(t, ref); a != b {
		t.Fatalf("resumed compaction differs:\n%s\nvs\n%s", a, b)
	}
	if n := rowCount(t, e.be); n != 50+51 {
		t.Fatalf("rows %d, want 101 (50 kept at 250, 51 newer)", n)
	}
}
