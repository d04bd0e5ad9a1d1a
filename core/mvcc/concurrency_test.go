package mvcc_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/mvcc"
)

// TestConcurrentReadersDuringWritesFlushesAndCompaction: the writer moves
// keys a and b together in one txn per revision while the backend flushes
// every few milliseconds and compactions run; readers must always see a
// and b equal (one revision, never half a txn), revisions that never go
// backwards, and historical reads that either work or say ErrCompacted.
func TestConcurrentReadersDuringWritesFlushesAndCompaction(t *testing.T) {
	cfg := mvcc.DefaultConfig()
	cfg.CompactionBatch = 3
	e := newEnv(t, cfg)
	s := e.s
	for i := range 20 {
		put(t, s, fmt.Sprintf("pad%02d", i), "x")
	}
	writes := 1500
	if testing.Short() {
		writes = 300
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := range 4 {
		wg.Go(func() {
			lastRev := int64(0)
			for !done.Load() {
				resp, err := s.Range(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("c")})
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				if resp.Header.Revision < lastRev {
					t.Errorf("reader %d: revision went back %d -> %d", r, lastRev, resp.Header.Revision)
					return
				}
				lastRev = resp.Header.Revision
				if len(resp.Kvs) == 2 && string(resp.Kvs[0].Value) != string(resp.Kvs[1].Value) {
					t.Errorf("reader %d: torn txn a=%s b=%s", r, resp.Kvs[0].Value, resp.Kvs[1].Value)
					return
				}
				// A historical read and a watch catch-up.
				old := max(lastRev-5, 1)
				if _, err := s.Range(&pb.RangeRequest{Key: []byte("pad00"), RangeEnd: []byte("pad99"), Revision: old}); err != nil && !errors.Is(err, mvcc.ErrCompacted) {
					t.Errorf("reader %d: historical read: %v", r, err)
					return
				}
				if _, _, err := s.Events([]byte("a"), []byte("c"), old, 0, 10); err != nil && !errors.Is(err, mvcc.ErrCompacted) {
					t.Errorf("reader %d: events: %v", r, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	for i := range writes {
		v := fmt.Sprint(i)
		if _, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", v), opPut("b", v)}}); err != nil {
			t.Fatal(err)
		}
		e.be.SetConsistentIndex(uint64(i+1), 1)
		if i%100 == 99 {
			if _, err := s.Compact(&pb.CompactionRequest{Revision: s.Rev() - 10}); err != nil {
				t.Fatal(err)
			}
		}
	}
	done.Store(true)
	wg.Wait()
	if reads.Load() == 0 {
		t.Fatal("no reads ran")
	}
}
