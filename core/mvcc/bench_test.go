package mvcc_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

var benchValue = make([]byte, 256)

func BenchmarkPut(b *testing.B) {
	s := newStore(b)
	var i uint64
	for b.Loop() {
		key := fmt.Appendf(nil, "%08d", i%100_000)
		if _, err := s.Put(&pb.PutRequest{Key: key, Value: benchValue}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkRangeSingleKey(b *testing.B) {
	s := newStore(b)
	for i := range 10_000 {
		put(b, s, fmt.Sprintf("%08d", i), string(benchValue))
	}
	req := &pb.RangeRequest{Key: []byte("00005000")}
	for b.Loop() {
		if resp, err := s.Range(req); err != nil || len(resp.Kvs) != 1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkRangePrefixLimit(b *testing.B) {
	s := newStore(b)
	for p := range 100 {
		for i := range 100 {
			put(b, s, fmt.Sprintf("/p%03d/%03d", p, i), string(benchValue))
		}
	}
	req := &pb.RangeRequest{Key: []byte("/p050/"), RangeEnd: []byte("/p0500"), Limit: 10}
	for b.Loop() {
		if resp, err := s.Range(req); err != nil || len(resp.Kvs) != 10 || resp.Count != 100 {
			b.Fatal(err)
		}
	}
}

func BenchmarkTxnComparePut(b *testing.B) {
	s := newStore(b)
	put(b, s, "lock", "x")
	for b.Loop() {
		resp, err := s.Txn(&pb.TxnRequest{
			Compare: []*pb.Compare{{Key: []byte("lock"), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte("x")}}},
			Success: []*pb.RequestOp{opPut("counter", string(benchValue))},
		})
		if err != nil || !resp.Succeeded {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutWith8Readers measures put throughput while 8 goroutines run
// single-key and limited prefix ranges.
func BenchmarkPutWith8Readers(b *testing.B) {
	s := newStore(b)
	for i := range 1000 {
		put(b, s, fmt.Sprintf("%08d", i), string(benchValue))
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Go(func() {
			req := &pb.RangeRequest{Key: fmt.Appendf(nil, "%08d", r*100), RangeEnd: fmt.Appendf(nil, "%08d", r*100+100), Limit: 10}
			for !stop.Load() {
				if _, err := s.Range(req); err != nil {
					b.Error(err)
					return
				}
				reads.Add(1)
			}
		})
	}
	var i uint64
	for b.Loop() {
		if _, err := s.Put(&pb.PutRequest{Key: fmt.Appendf(nil, "%08d", i%1000), Value: benchValue}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(reads.Load())/b.Elapsed().Seconds(), "reads/s")
}
