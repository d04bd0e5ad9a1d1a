package mvcc_test

import (
	"errors"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/mvcc"
)

func TestRevisionsAndVersions(t *testing.T) {
	s := newStore(t)
	if s.Rev() != 1 {
		t.Fatalf("empty store revision %d, want 1", s.Rev())
	}
	steps := []struct {
		name    string
		do      func() int64 // returns the response header revision
		wantRev int64
		wantFoo string // kvString of foo at the current revision
	}{
		{"create", func() int64 { return put(t, s, "foo", "a").Header.Revision }, 2, "foo=a@2/2/1"},
		{"update", func() int64 { return put(t, s, "foo", "b").Header.Revision }, 3, "foo=b@2/3/2"},
		{"other key", func() int64 { return put(t, s, "zzz", "z").Header.Revision }, 4, "foo=b@2/3/2"},
		{"delete", func() int64 { return del(t, s, "foo", "").Header.Revision }, 5, ""},
		{"delete nothing", func() int64 { return del(t, s, "foo", "").Header.Revision }, 5, ""},
		{"recreate", func() int64 { return put(t, s, "foo", "c").Header.Revision }, 6, "foo=c@6/6/1"},
		{"update again", func() int64 { return put(t, s, "foo", "d").Header.Revision }, 7, "foo=d@6/7/2"},
	}
	for _, st := range steps {
		if got := st.do(); got != st.wantRev || s.Rev() != st.wantRev {
			t.Fatalf("%s: header rev %d, Rev() %d, want %d", st.name, got, s.Rev(), st.wantRev)
		}
		kv := get(t, s, "foo", 0)
		if got := kvString(one(kv)); got != st.wantFoo {
			t.Fatalf("%s: foo = %q, want %q", st.name, got, st.wantFoo)
		}
	}
	// Historical reads see each revision as it was.
	history := map[int64]string{1: "", 2: "foo=a@2/2/1", 3: "foo=b@2/3/2", 4: "foo=b@2/3/2", 5: "", 6: "foo=c@6/6/1", 7: "foo=d@6/7/2"}
	for rev, want := range history {
		resp, err := s.Range(&pb.RangeRequest{Key: []byte("foo"), Revision: rev})
		if err != nil {
			t.Fatal(err)
		}
		if got := kvString(resp.Kvs); got != want {
			t.Errorf("foo@%d = %q, want %q", rev, got, want)
		}
		if resp.Header.Revision != 7 {
			t.Errorf("historical read header revision %d, want current 7", resp.Header.Revision)
		}
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("foo"), Revision: 8}); !errors.Is(err, mvcc.ErrFutureRev) {
		t.Fatalf("future read: %v", err)
	}
}

func TestRangeConventionsLimitsAndCount(t *testing.T) {
	s := newStore(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		put(t, s, k, "v"+k)
	}
	del(t, s, "e", "")
	tests := []struct {
		name  string
		req   *pb.RangeRequest
		keys  string
		count int64
		more  bool
	}{
		{"single key", &pb.RangeRequest{Key: []byte("b")}, "b", 1, false},
		{"missing key", &pb.RangeRequest{Key: []byte("bb")}, "", 0, false},
		{"deleted key", &pb.RangeRequest{Key: []byte("e")}, "", 0, false},
		{"range", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte("d")}, "b,c", 2, false},
		{"empty range", &pb.RangeRequest{Key: []byte("d"), RangeEnd: []byte("b")}, "", 0, false},
		{"from key", &pb.RangeRequest{Key: []byte("b"), RangeEnd: []byte{0}}, "b,c,d", 3, false},
		{"everything", &pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}}, "a,b,c,d", 4, false},
		{"prefix", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("b")}, "a", 1, false},
		{"limit", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Limit: 2}, "a,b", 4, true},
		{"limit exact", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Limit: 4}, "a,b,c,d", 4, false},
		{"limit above", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Limit: 10}, "a,b,c,d", 4, false},
		{"count only", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), CountOnly: true, Limit: 1}, "", 4, false},
		{"min mod", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), MinModRevision: 4}, "c,d", 4, false},
		{"max mod", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), MaxModRevision: 3}, "a,b", 4, false},
		{"min create + limit", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), MinCreateRevision: 3, Limit: 1}, "b", 4, true},
		{"max create", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), MaxCreateRevision: 2}, "a", 4, false},
		{"historical range", &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), Revision: 3}, "a,b", 2, false},
		{"historical before delete", &pb.RangeRequest{Key: []byte("e"), Revision: 6}, "e", 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.Range(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := keysOf(resp.Kvs); got != tc.keys || resp.Count != tc.count || resp.More != tc.more {
				t.Fatalf("keys %q count %d more %v, want %q %d %v", got, resp.Count, resp.More, tc.keys, tc.count, tc.more)
			}
			if resp.Header.Revision != s.Rev() {
				t.Fatalf("header revision %d", resp.Header.Revision)
			}
		})
	}
	// keys_only: no value and (etcd 3.7) no lease; revisions intact.
	resp, err := s.Range(&pb.RangeRequest{Key: []byte("a"), KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := kvString(resp.Kvs); got != "a=@2/2/1" {
		t.Fatalf("keys_only = %q", got)
	}
	for _, bad := range []*pb.RangeRequest{{}, {Key: []byte("a"), SortOrder: 9}, {Key: []byte("a"), SortTarget: 9}} {
		if _, err := s.Range(bad); err == nil {
			t.Fatalf("bad request %v accepted", bad)
		}
	}
}

func TestRangeSorting(t *testing.T) {
	s := newStore(t)
	// Make keys whose version, create, mod and value orders all differ.
	put(t, s, "a", "3") // rev 2
	put(t, s, "b", "1") // rev 3
	put(t, s, "c", "2") // rev 4
	put(t, s, "a", "3") // rev 5: a v2
	put(t, s, "a", "3") // rev 6: a v3
	put(t, s, "b", "1") // rev 7: b v2
	all := func(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder, limit int64) *pb.RangeRequest {
		return &pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), SortTarget: target, SortOrder: order, Limit: limit}
	}
	K, V, C, M, VAL := pb.RangeRequest_KEY, pb.RangeRequest_VERSION, pb.RangeRequest_CREATE, pb.RangeRequest_MOD, pb.RangeRequest_VALUE
	NONE, ASC, DESC := pb.RangeRequest_NONE, pb.RangeRequest_ASCEND, pb.RangeRequest_DESCEND
	tests := []struct {
		name string
		req  *pb.RangeRequest
		keys string
		more bool
	}{
		{"default", all(K, NONE, 0), "a,b,c", false},
		{"key asc", all(K, ASC, 0), "a,b,c", false},
		{"key desc", all(K, DESC, 0), "c,b,a", false},
		{"key desc limit", all(K, DESC, 2), "c,b", true},
		{"version asc", all(V, ASC, 0), "c,b,a", false},
		{"version desc", all(V, DESC, 0), "a,b,c", false},
		{"create asc", all(C, ASC, 0), "a,b,c", false},
		{"create desc", all(C, DESC, 0), "c,b,a", false},
		{"mod asc", all(M, ASC, 0), "c,a,b", false},
		{"mod desc limit", all(M, DESC, 1), "b", true},
		{"value asc", all(VAL, ASC, 0), "b,c,a", false},
		{"value desc", all(VAL, DESC, 0), "a,c,b", false},
		// etcd's special case: a target with order NONE sorts ascending,
		// but the limit is applied first, in key order.
		{"version none limit", all(V, NONE, 2), "c,b", true},
		{"value none", all(VAL, NONE, 0), "b,c,a", false},
	}
	for _, tc := range tests {
		resp, err := s.Range(tc.req)
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(resp.Kvs); got != tc.keys || resp.More != tc.more || resp.Count != 3 {
			t.Errorf("%s: keys %q more %v count %d, want %q %v 3", tc.name, got, resp.More, resp.Count, tc.keys, tc.more)
		}
	}
	// The special case shows with a fourth key of version 1 past the
	// fetched window: NONE fetches a,b,c (limit+1) then sorts; ASCEND
	// sorts everything.
	put(t, s, "d", "0")
	for _, tc := range []struct {
		order pb.RangeRequest_SortOrder
		keys  string
	}{{NONE, "c,b"}, {ASC, "c,d"}} {
		resp, err := s.Range(all(V, tc.order, 2))
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(resp.Kvs); got != tc.keys || !resp.More || resp.Count != 4 {
			t.Errorf("version order %v limit 2: %q more %v count %d, want %q", tc.order, got, resp.More, resp.Count, tc.keys)
		}
	}
	// keys_only with a VALUE sort still sorts by value and drops values.
	resp, err := s.Range(&pb.RangeRequest{Key: []byte("a"), RangeEnd: []byte("z"), SortTarget: VAL, SortOrder: ASC, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if keysOf(resp.Kvs) != "d,b,c,a" || len(resp.Kvs[0].Value) != 0 {
		t.Fatalf("keys_only value sort: %v", resp.Kvs)
	}
}

func TestPutOptionsAndLeases(t *testing.T) {
	leases := newFakeLeases(100, 200)
	cfg := mvcc.DefaultConfig()
	cfg.Leases = leases
	s := newEnv(t, cfg).s

	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), IgnoreValue: true}); !errors.Is(err, mvcc.ErrKeyNotFound) {
		t.Fatalf("ignore_value on missing key: %v", err)
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), IgnoreLease: true}); !errors.Is(err, mvcc.ErrKeyNotFound) {
		t.Fatalf("ignore_lease on missing key: %v", err)
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Lease: 999}); !errors.Is(err, mvcc.ErrLeaseNotFound) {
		t.Fatalf("unknown lease: %v", err)
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("x"), IgnoreValue: true}); !errors.Is(err, mvcc.ErrValueProvided) {
		t.Fatalf("value with ignore_value: %v", err)
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Lease: 100, IgnoreLease: true}); !errors.Is(err, mvcc.ErrLeaseProvided) {
		t.Fatalf("lease with ignore_lease: %v", err)
	}
	if _, err := s.Put(&pb.PutRequest{Value: []byte("x")}); !errors.Is(err, mvcc.ErrEmptyKey) {
		t.Fatalf("empty key: %v", err)
	}
	if s.Rev() != 1 {
		t.Fatalf("failed puts bumped the revision to %d", s.Rev())
	}

	resp, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v1"), Lease: 100, PrevKv: true})
	if err != nil || resp.PrevKv != nil || resp.Header.Revision != 2 {
		t.Fatalf("first put: %v %v", resp, err)
	}
	if got := leases.keys(100); len(got) != 1 || got[0] != "k" {
		t.Fatalf("lease 100 keys %v", got)
	}
	// ignore_value keeps the value and takes the new lease.
	resp, err = s.Put(&pb.PutRequest{Key: []byte("k"), IgnoreValue: true, Lease: 200, PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	if kvString(one(resp.PrevKv)) != "k=v1@2/2/1/L100" {
		t.Fatalf("prev_kv %v", resp.PrevKv)
	}
	if got := kvString(one(get(t, s, "k", 0))); got != "k=v1@2/3/2/L200" {
		t.Fatalf("after ignore_value: %s", got)
	}
	if len(leases.keys(100)) != 0 || len(leases.keys(200)) != 1 {
		t.Fatalf("lease move: 100=%v 200=%v", leases.keys(100), leases.keys(200))
	}
	// ignore_lease keeps the lease and takes the new value.
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v2"), IgnoreLease: true}); err != nil {
		t.Fatal(err)
	}
	if got := kvString(one(get(t, s, "k", 0))); got != "k=v2@2/4/3/L200" {
		t.Fatalf("after ignore_lease: %s", got)
	}
	// A put without lease detaches; a delete detaches too.
	put(t, s, "k", "v3")
	if len(leases.keys(200)) != 0 {
		t.Fatalf("put with lease 0 left attachment %v", leases.keys(200))
	}
	if _, err := s.Put(&pb.PutRequest{Key: []byte("k"), Value: []byte("v4"), Lease: 100}); err != nil {
		t.Fatal(err)
	}
	dr := del(t, s, "k", "")
	if dr.Deleted != 1 || len(leases.keys(100)) != 0 {
		t.Fatalf("delete: %v, lease 100 keys %v", dr, leases.keys(100))
	}
	want := []string{"attach 100 k", "detach 100 k", "attach 200 k", "detach 200 k", "attach 100 k", "detach 100 k"}
	if len(leases.log) != len(want) {
		t.Fatalf("lease calls %v, want %v", leases.log, want)
	}
	for i := range want {
		if leases.log[i] != want[i] {
			t.Fatalf("lease calls %v, want %v", leases.log, want)
		}
	}

	// No lease hooks: any lease is unknown.
	plain := newStore(t)
	if _, err := plain.Put(&pb.PutRequest{Key: []byte("k"), Lease: 1}); !errors.Is(err, mvcc.ErrLeaseNotFound) {
		t.Fatalf("lease without hooks: %v", err)
	}
}

func TestDeleteRangePrevKV(t *testing.T) {
	s := newStore(t)
	for _, k := range []string{"a", "b", "c"} {
		put(t, s, k, k)
	}
	resp, err := s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Deleted != 2 || kvString(resp.PrevKvs) != "a=a@2/2/1 b=b@3/3/1" || resp.Header.Revision != 5 {
		t.Fatalf("delete: %v", resp)
	}
	resp, err = s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte("c"), PrevKv: true})
	if err != nil || resp.Deleted != 0 || len(resp.PrevKvs) != 0 || resp.Header.Revision != 5 || s.Rev() != 5 {
		t.Fatalf("delete of nothing: %v %v", resp, err)
	}
	resp, err = s.DeleteRange(&pb.DeleteRangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil || resp.Deleted != 1 || s.Rev() != 6 {
		t.Fatalf("delete all: %v %v", resp, err)
	}
}

func TestDeleteKeysOneRevision(t *testing.T) {
	leases := newFakeLeases(5)
	cfg := mvcc.DefaultConfig()
	cfg.Leases = leases
	var events [][]string
	cfg.OnWrite = func(rev int64, evs []*mvccKVEvent) {
		var s []string
		for _, e := range evs {
			s = append(s, e.Type.String()+" "+string(e.Kv.Key))
		}
		events = append(events, s)
	}
	s := newEnv(t, cfg).s
	for _, k := range []string{"x", "y", "z"} {
		if _, err := s.Put(&pb.PutRequest{Key: []byte(k), Lease: 5}); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := s.DeleteKeys([][]byte{[]byte("z"), []byte("missing"), []byte("x"), []byte("y"), []byte("x")})
	if err != nil || rev != 5 {
		t.Fatalf("DeleteKeys rev %d err %v, want 5", rev, err)
	}
	if got := events[len(events)-1]; len(got) != 3 || got[0] != "DELETE x" || got[2] != "DELETE z" {
		t.Fatalf("events %v", got)
	}
	if len(leases.keys(5)) != 0 {
		t.Fatalf("keys still attached: %v", leases.keys(5))
	}
	if rev, _ := s.DeleteKeys([][]byte{[]byte("x")}); rev != 5 {
		t.Fatalf("deleting nothing bumped to %d", rev)
	}
}
