package server

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// TestIsSerializableTxn: only a txn whose every operation is a
// serializable range skips the read barrier, as in etcd; a nested txn
// never does, even one of serializable ranges.
func TestIsSerializableTxn(t *testing.T) {
	rng := func(serializable bool) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("k"), Serializable: serializable}}}
	}
	nested := func(ops ...*pb.RequestOp) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{Success: ops}}}
	}
	for _, tc := range []struct {
		name string
		r    *pb.TxnRequest
		want bool
	}{
		{"comparisons alone", &pb.TxnRequest{}, true},
		{"serializable ranges", &pb.TxnRequest{Success: []*pb.RequestOp{rng(true)}, Failure: []*pb.RequestOp{rng(true)}}, true},
		{"a linearizable range", &pb.TxnRequest{Success: []*pb.RequestOp{rng(true)}, Failure: []*pb.RequestOp{rng(false)}}, false},
		{"a nested txn of serializable ranges", &pb.TxnRequest{Success: []*pb.RequestOp{nested(rng(true))}}, false},
		{"an empty nested txn", &pb.TxnRequest{Success: []*pb.RequestOp{nested()}}, false},
	} {
		if got := isSerializableTxn(tc.r); got != tc.want {
			t.Errorf("%s: isSerializableTxn = %v, want %v", tc.name, got, tc.want)
		}
	}
}
