package mvcc_test

import (
	"errors"
	"fmt"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/mvcc"
)

func cmpOp(key string, target pb.Compare_CompareTarget, result pb.Compare_CompareResult, v any) *pb.Compare {
	c := &pb.Compare{Key: []byte(key), Target: target, Result: result}
	switch target {
	case pb.Compare_VALUE:
		c.TargetUnion = &pb.Compare_Value{Value: []byte(v.(string))}
	case pb.Compare_VERSION:
		c.TargetUnion = &pb.Compare_Version{Version: int64(v.(int))}
	case pb.Compare_CREATE:
		c.TargetUnion = &pb.Compare_CreateRevision{CreateRevision: int64(v.(int))}
	case pb.Compare_MOD:
		c.TargetUnion = &pb.Compare_ModRevision{ModRevision: int64(v.(int))}
	case pb.Compare_LEASE:
		c.TargetUnion = &pb.Compare_Lease{Lease: int64(v.(int))}
	}
	return c
}

func opPut(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func opGet(k, end string) *pb.RequestOp {
	r := &pb.RangeRequest{Key: []byte(k)}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}

func opDel(k, end string) *pb.RequestOp {
	r := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		r.RangeEnd = []byte(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
}

func opTxn(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}

func TestTxnCompareMatrix(t *testing.T) {
	leases := newFakeLeases(7)
	cfg := mvcc.DefaultConfig()
	cfg.Leases = leases
	s := newEnv(t, cfg).s
	// k: value "m", create 2, mod 3, version 2, lease 7. r1, r2: a range.
	put(t, s, "k", "a")
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("m"), Lease: 7}); err != nil {
		t.Fatal(err)
	}
	put(t, s, "r1", "x") // rev 4, version 1
	put(t, s, "r2", "y") // rev 5, version 1
	const (
		VAL, VER, CRE, MOD, LEA = pb.Compare_VALUE, pb.Compare_VERSION, pb.Compare_CREATE, pb.Compare_MOD, pb.Compare_LEASE
		EQ, NE, GT, LT          = pb.Compare_EQUAL, pb.Compare_NOT_EQUAL, pb.Compare_GREATER, pb.Compare_LESS
	)
	tests := []struct {
		c    *pb.Compare
		want bool
	}{
		{cmpOp("k", VAL, EQ, "m"), true}, {cmpOp("k", VAL, EQ, "n"), false},
		{cmpOp("k", VAL, NE, "n"), true}, {cmpOp("k", VAL, GT, "l"), true},
		{cmpOp("k", VAL, LT, "n"), true}, {cmpOp("k", VAL, LT, "m"), false},
		{cmpOp("k", VER, EQ, 2), true}, {cmpOp("k", VER, GT, 1), true}, {cmpOp("k", VER, LT, 2), false}, {cmpOp("k", VER, NE, 2), false},
		{cmpOp("k", CRE, EQ, 2), true}, {cmpOp("k", CRE, LT, 3), true}, {cmpOp("k", CRE, GT, 2), false},
		{cmpOp("k", MOD, EQ, 3), true}, {cmpOp("k", MOD, GT, 2), true}, {cmpOp("k", MOD, NE, 3), false},
		{cmpOp("k", LEA, EQ, 7), true}, {cmpOp("k", LEA, EQ, 0), false}, {cmpOp("k", LEA, GT, 6), true},
		// A missing key compares as zero values; VALUE always fails.
		{cmpOp("nope", VER, EQ, 0), true}, {cmpOp("nope", CRE, EQ, 0), true}, {cmpOp("nope", MOD, LT, 1), true},
		{cmpOp("nope", LEA, EQ, 0), true}, {cmpOp("nope", VER, GT, 0), false},
		{cmpOp("nope", VAL, EQ, ""), false}, {cmpOp("nope", VAL, NE, "x"), false},
	}
	// Ranges: every key must satisfy the compare.
	rng := func(c *pb.Compare, end string) *pb.Compare { c.RangeEnd = []byte(end); return c }
	tests = append(tests, []struct {
		c    *pb.Compare
		want bool
	}{
		{rng(cmpOp("r", VER, EQ, 1), "s"), true},
		{rng(cmpOp("r", MOD, GT, 4), "s"), false}, // r1 has mod 4
		{rng(cmpOp("r", MOD, GT, 3), "s"), true},
		{rng(cmpOp("r", VAL, NE, "x"), "s"), false},
		{rng(cmpOp("r", VAL, GT, "a"), "s"), true},
		{rng(cmpOp("x", VER, EQ, 0), "z"), true}, // empty range: zero values
		{rng(cmpOp("x", VAL, EQ, ""), "z"), false},
		{rng(cmpOp("a", CRE, GT, 0), "\x00"), true}, // from-key range
	}...)
	for i, tc := range tests {
		before := s.Rev()
		resp, err := s.Txn(&pb.TxnRequest{Compare: []*pb.Compare{tc.c}, Success: []*pb.RequestOp{opGet("k", "")}, Failure: []*pb.RequestOp{opGet("k", "")}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Succeeded != tc.want {
			t.Errorf("case %d %v: succeeded %v, want %v", i, tc.c, resp.Succeeded, tc.want)
		}
		if s.Rev() != before || resp.Header.Revision != before {
			t.Fatalf("read-only txn bumped revision %d -> %d", before, s.Rev())
		}
	}
	// Several compares: all must hold.
	resp, err := s.Txn(&pb.TxnRequest{Compare: []*pb.Compare{cmpOp("k", VER, EQ, 2), cmpOp("k", VAL, EQ, "zz")}})
	if err != nil || resp.Succeeded {
		t.Fatalf("conjunction: %v %v", resp, err)
	}
}

func TestTxnOneRevisionReadOwnWritesAndNesting(t *testing.T) {
	var got []string
	cfg := mvcc.DefaultConfig()
	cfg.OnWrite = func(rev int64, evs []*mvccKVEvent) {
		for _, e := range evs {
			got = append(got, fmt.Sprintf("%d %s %s=%s", rev, e.Type, e.Kv.Key, e.Kv.Value))
		}
	}
	s := newEnv(t, cfg).s
	put(t, s, "a", "1")    // rev 2
	put(t, s, "gone", "x") // rev 3
	req := &pb.TxnRequest{
		Compare: []*pb.Compare{cmpOp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "1")},
		Success: []*pb.RequestOp{
			opPut("b", "2"),
			opGet("b", ""), // sees the txn's own write
			opDel("gone", ""),
			opTxn(&pb.TxnRequest{
				// Nested compares see the state BEFORE the txn (etcd):
				// b does not exist yet.
				Compare: []*pb.Compare{cmpOp("b", pb.Compare_VERSION, pb.Compare_EQUAL, 0)},
				Success: []*pb.RequestOp{opPut("c", "3"), opGet("a", "z")},
				Failure: []*pb.RequestOp{opPut("c", "never")},
			}),
			opPut("a", "4"),
		},
		Failure: []*pb.RequestOp{opPut("z", "never")},
	}
	resp, err := s.Txn(req)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Succeeded || resp.Header.Revision != 4 || s.Rev() != 4 {
		t.Fatalf("txn: succeeded %v header %d rev %d", resp.Succeeded, resp.Header.Revision, s.Rev())
	}
	rr := resp.Responses[1].GetResponseRange()
	if kvString(rr.Kvs) != "b=2@4/4/1" || rr.Header.Revision != 4 {
		t.Fatalf("read own write: %v", rr)
	}
	if resp.Responses[0].GetResponsePut().Header.Revision != 4 || resp.Responses[2].GetResponseDeleteRange().Deleted != 1 {
		t.Fatalf("op responses: %v", resp.Responses)
	}
	nested := resp.Responses[3].GetResponseTxn()
	if !nested.Succeeded || keysOf(nested.Responses[1].GetResponseRange().Kvs) != "a,b,c" {
		t.Fatalf("nested: %v", nested)
	}
	want := []string{"4 PUT b=2", "4 DELETE gone=", "4 PUT c=3", "4 PUT a=4"}
	if fmt.Sprint(got[2:]) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got[2:], want)
	}
	// Sub-revisions order the ops: historical read at 4 shows all, at 3 none.
	if r, _ := s.Range(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Revision: 3}); keysOf(r.Kvs) != "a,gone" {
		t.Fatalf("at 3: %v", keysOf(r.Kvs))
	}
	if kv := get(t, s, "a", 0); kvString(one(kv)) != "a=4@2/4/2" {
		t.Fatalf("a = %v", kvString(one(kv)))
	}
	// Failure branch.
	resp, err = s.Txn(&pb.TxnRequest{Compare: []*pb.Compare{cmpOp("a", pb.Compare_VALUE, pb.Compare_EQUAL, "1")}, Success: []*pb.RequestOp{opPut("s", "1")}, Failure: []*pb.RequestOp{opPut("f", "1")}})
	if err != nil || resp.Succeeded || s.Rev() != 5 || get(t, s, "f", 0) == nil || get(t, s, "s", 0) != nil {
		t.Fatalf("failure branch: %v %v", resp, err)
	}
	// An empty txn changes nothing.
	resp, err = s.Txn(&pb.TxnRequest{})
	if err != nil || !resp.Succeeded || s.Rev() != 5 {
		t.Fatalf("empty txn: %v %v rev %d", resp, err, s.Rev())
	}
}

func TestTxnErrorsApplyNothing(t *testing.T) {
	s := newStore(t)
	put(t, s, "a", "1")
	for name, op := range map[string]*pb.RequestOp{
		"unknown lease":        {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x"), Lease: 9}}},
		"ignore_value missing": {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("x"), IgnoreValue: true}}},
		"future range":         {Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("a"), Revision: 99}}},
		"nested unknown lease": opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Lease: 9}}}}}),
	} {
		_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("b", "1"), op}})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if s.Rev() != 2 || get(t, s, "b", 0) != nil {
			t.Fatalf("%s: partially applied (rev %d)", name, s.Rev())
		}
	}
	_, err := s.Txn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("x", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("y"), Lease: 9}}}}})
	if !errors.Is(err, mvcc.ErrLeaseNotFound) {
		t.Fatalf("error %v, want ErrLeaseNotFound", err)
	}
}

func TestCheckTxn(t *testing.T) {
	many := func(n int) []*pb.RequestOp {
		var ops []*pb.RequestOp
		for i := range n {
			ops = append(ops, opPut(fmt.Sprintf("k%d", i), "v"))
		}
		return ops
	}
	tests := []struct {
		name string
		req  *pb.TxnRequest
		want error
	}{
		{"ok", &pb.TxnRequest{Success: many(4), Failure: many(4)}, nil},
		{"too many success", &pb.TxnRequest{Success: many(5)}, mvcc.ErrTooManyOps},
		{"too many compares", &pb.TxnRequest{Compare: []*pb.Compare{{Key: []byte("a")}, {Key: []byte("a")}, {Key: []byte("a")}, {Key: []byte("a")}, {Key: []byte("a")}}}, mvcc.ErrTooManyOps},
		{"nested budget", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: many(4)}), opPut("x", "")}}, mvcc.ErrTooManyOps},
		{"empty compare key", &pb.TxnRequest{Compare: []*pb.Compare{{}}}, mvcc.ErrEmptyKey},
		{"empty op", &pb.TxnRequest{Success: []*pb.RequestOp{{}}}, mvcc.ErrKeyNotFound},
		{"empty put key", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("", "v")}}, mvcc.ErrEmptyKey},
		{"dup put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1"), opPut("a", "2")}}, mvcc.ErrDuplicateKey},
		{"dup across branches ok", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1")}, Failure: []*pb.RequestOp{opPut("a", "2")}}, nil},
		{"put in deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c"), opPut("b", "1")}}, mvcc.ErrDuplicateKey},
		{"put then delete point", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1"), opDel("a", "")}}, mvcc.ErrDuplicateKey},
		{"put beside deleted range", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c"), opPut("c", "1")}}, nil},
		{"two deletes ok", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c"), opDel("b", "")}}, nil},
		{"nested dup with parent put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "2")}})}}, mvcc.ErrDuplicateKey},
		{"nested put in parent delete", &pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "z"), opTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{opPut("m", "2")}})}}, mvcc.ErrDuplicateKey},
		{"nested then/else same key ok", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1")}, Failure: []*pb.RequestOp{opPut("a", "2")}})}}, nil},
		{"two nested txns same key", &pb.TxnRequest{Success: []*pb.RequestOp{opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opPut("a", "1")}}), opTxn(&pb.TxnRequest{Failure: []*pb.RequestOp{opPut("a", "2")}})}}, mvcc.ErrDuplicateKey},
		{"nested delete vs parent put", &pb.TxnRequest{Success: []*pb.RequestOp{opPut("b", "1"), opTxn(&pb.TxnRequest{Success: []*pb.RequestOp{opDel("a", "c")}})}}, mvcc.ErrDuplicateKey},
		{"ignore_value with value", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("v"), IgnoreValue: true}}}}}, mvcc.ErrValueProvided},
	}
	for _, tc := range tests {
		if err := mvcc.CheckTxn(tc.req, 4); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
