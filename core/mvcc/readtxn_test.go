package mvcc_test

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/mvcc"
)

// TestReadTxnAgreesWithTxn: a read-only txn answered by ReadTxn (any
// goroutine, no revision) is exactly what the writer's Txn answers.
func TestReadTxnAgreesWithTxn(t *testing.T) {
	s := newStore(t)
	put(t, s, "a", "1")
	put(t, s, "b", "2")
	put(t, s, "a", "3")
	rng := func(k, end string, rev int64) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte(k), RangeEnd: []byte(end), Revision: rev}}}
	}
	cmp := func(k string, v string) *pb.Compare {
		return &pb.Compare{Key: []byte(k), Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Value{Value: []byte(v)}}
	}
	cases := []*pb.TxnRequest{
		{Compare: []*pb.Compare{cmp("a", "3")}, Success: []*pb.RequestOp{rng("a", "c", 0), rng("a", "", 2)}},
		{Compare: []*pb.Compare{cmp("a", "1")}, Failure: []*pb.RequestOp{rng("b", "", 0)}},
		{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{
			Compare: []*pb.Compare{cmp("b", "2")}, Success: []*pb.RequestOp{rng("b", "", 0)}}}}}},
	}
	for i, r := range cases {
		if !mvcc.IsReadOnlyTxn(r) {
			t.Fatalf("case %d: not read-only", i)
		}
		got, err := s.ReadTxn(r)
		if err != nil {
			t.Fatalf("case %d: ReadTxn: %v", i, err)
		}
		want, err := s.Txn(r)
		if err != nil {
			t.Fatalf("case %d: Txn: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("case %d:\nReadTxn %v\nTxn     %v", i, got, want)
		}
	}
	if _, err := s.ReadTxn(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x")}}}}}); err == nil {
		t.Fatal("ReadTxn accepted a txn that writes")
	}
	if _, err := s.ReadTxn(&pb.TxnRequest{Success: []*pb.RequestOp{rng("a", "", 1<<30)}}); err != mvcc.ErrFutureRev {
		t.Fatalf("ReadTxn of a future revision: %v", err)
	}
}
