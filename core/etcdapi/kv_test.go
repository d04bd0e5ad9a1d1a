package etcdapi_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent/agenttest"
)

// Each test runs against one member and against a three-member cluster
// whose client talks to a follower, so that every semantic is checked
// through forwarding and follower reads too.
func forEachCluster(t *testing.T, fn func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client)) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			c := agenttest.Start(t, size, agenttest.Options{})
			member := 0
			if size > 1 {
				member = c.Follower()
			}
			fn(t, c, c.Client(member))
			c.CheckConverged()
		})
	}
}

func keys(resp *clientv3.GetResponse) string {
	var ks []string
	for _, kv := range resp.Kvs {
		ks = append(ks, string(kv.Key))
	}
	return strings.Join(ks, ",")
}

func TestKVRevisionsAndVersions(t *testing.T) {
	forEachCluster(t, func(t *testing.T, _ *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		start, err := cli.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		r0 := start.Header.Revision
		p1, _ := cli.Put(ctx, "a", "1")
		p2, _ := cli.Put(ctx, "a", "2")
		if p1.Header.Revision != r0+1 || p2.Header.Revision != r0+2 {
			t.Fatalf("put revisions %d,%d after %d", p1.Header.Revision, p2.Header.Revision, r0)
		}
		g, err := cli.Get(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		kv := g.Kvs[0]
		if kv.CreateRevision != r0+1 || kv.ModRevision != r0+2 || kv.Version != 2 || string(kv.Value) != "2" {
			t.Fatalf("kv = %+v", kv)
		}
		// A read at the first put's revision sees the old value; the header
		// still carries the current revision.
		old, err := cli.Get(ctx, "a", clientv3.WithRev(r0+1))
		if err != nil {
			t.Fatal(err)
		}
		if string(old.Kvs[0].Value) != "1" || old.Header.Revision != r0+2 {
			t.Fatalf("historical read = %+v header %d", old.Kvs, old.Header.Revision)
		}
		// Delete ends the generation; a new put starts version 1 again.
		d, err := cli.Delete(ctx, "a", clientv3.WithPrevKV())
		if err != nil || d.Deleted != 1 || string(d.PrevKvs[0].Value) != "2" {
			t.Fatalf("delete = %+v, %v", d, err)
		}
		nothing, err := cli.Delete(ctx, "a")
		if err != nil || nothing.Deleted != 0 || nothing.Header.Revision != d.Header.Revision {
			t.Fatalf("delete of nothing bumped revision or failed: %+v, %v", nothing, err)
		}
		cli.Put(ctx, "a", "3")
		g, _ = cli.Get(ctx, "a")
		if g.Kvs[0].Version != 1 || g.Kvs[0].CreateRevision != d.Header.Revision+1 {
			t.Fatalf("recreated kv = %+v", g.Kvs[0])
		}
		// Reads never bump the revision.
		again, _ := cli.Get(ctx, "a")
		if again.Header.Revision != g.Header.Revision {
			t.Fatalf("read bumped revision %d -> %d", g.Header.Revision, again.Header.Revision)
		}
	})
}

func TestKVRangeOptions(t *testing.T) {
	forEachCluster(t, func(t *testing.T, _ *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		for i, k := range []string{"k1", "k2", "k3", "k4", "l1"} {
			if _, err := cli.Put(ctx, k, fmt.Sprint(9-i)); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			name  string
			key   string
			opts  []clientv3.OpOption
			want  string
			count int64
			more  bool
		}{
			{"single", "k2", nil, "k2", 1, false},
			{"missing", "k9", nil, "", 0, false},
			{"prefix", "k", []clientv3.OpOption{clientv3.WithPrefix()}, "k1,k2,k3,k4", 4, false},
			{"range", "k2", []clientv3.OpOption{clientv3.WithRange("k4")}, "k2,k3", 2, false},
			{"from key", "k3", []clientv3.OpOption{clientv3.WithFromKey()}, "k3,k4,l1", 3, false},
			{"limit counts all", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(2)}, "k1,k2", 4, true},
			{"limit exact", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithLimit(4)}, "k1,k2,k3,k4", 4, false},
			{"descend by key", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}, "k4,k3,k2,k1", 4, false},
			{"by value", "k", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)}, "k4,k3,k2,k1", 4, false},
			{"by mod rev, limit", "", []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend), clientv3.WithLimit(2)}, "l1,k4", 5, true},
		}
		for _, tc := range cases {
			key := tc.key
			if key == "" {
				key = "\x00"
			}
			resp, err := cli.Get(ctx, key, tc.opts...)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := keys(resp); got != tc.want || resp.Count != tc.count || resp.More != tc.more {
				t.Errorf("%s: keys %q count %d more %v; want %q %d %v", tc.name, got, resp.Count, resp.More, tc.want, tc.count, tc.more)
			}
		}
		ko, _ := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if len(ko.Kvs) != 4 || len(ko.Kvs[0].Value) != 0 {
			t.Errorf("keys only returned values: %+v", ko.Kvs)
		}
		co, _ := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if len(co.Kvs) != 0 || co.Count != 4 {
			t.Errorf("count only = %d kvs, count %d", len(co.Kvs), co.Count)
		}
		k3, _ := cli.Get(ctx, "k3")
		mod := k3.Kvs[0].ModRevision
		f, _ := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithMinModRev(mod))
		if keys(f) != "k3,k4" {
			t.Errorf("min mod rev filter = %q", keys(f))
		}
		f, _ = cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithMaxCreateRev(mod))
		if keys(f) != "k1,k2,k3" {
			t.Errorf("max create rev filter = %q", keys(f))
		}
		s, err := cli.Get(ctx, "k", clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil || s.Count != 4 {
			t.Errorf("serializable read = %v, %v", s, err)
		}
	})
}

func TestKVPutOptions(t *testing.T) {
	forEachCluster(t, func(t *testing.T, _ *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		if _, err := cli.Put(ctx, "p", "", clientv3.WithIgnoreValue()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
			t.Fatalf("ignore_value on a missing key: %v", err)
		}
		cli.Put(ctx, "p", "v1")
		resp, err := cli.Put(ctx, "p", "v2", clientv3.WithPrevKV())
		if err != nil || string(resp.PrevKv.Value) != "v1" {
			t.Fatalf("prev_kv = %+v, %v", resp, err)
		}
		if _, err := cli.Put(ctx, "p", "", clientv3.WithIgnoreValue()); err != nil {
			t.Fatal(err)
		}
		g, _ := cli.Get(ctx, "p")
		if string(g.Kvs[0].Value) != "v2" || g.Kvs[0].Version != 3 {
			t.Fatalf("after ignore_value: %+v", g.Kvs[0])
		}
		if _, err := cli.Put(ctx, "p", "v3", clientv3.WithIgnoreLease()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, "q", "v", clientv3.WithIgnoreLease()); !errors.Is(err, rpctypes.ErrKeyNotFound) {
			t.Fatalf("ignore_lease on a missing key: %v", err)
		}
		if _, err := cli.Put(ctx, "q", "v", clientv3.WithLease(0x1234)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Fatalf("unknown lease: %v", err)
		}
	})
}

func TestKVTxn(t *testing.T) {
	forEachCluster(t, func(t *testing.T, _ *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		p, _ := cli.Put(ctx, "t1", "a")
		cli.Put(ctx, "t2", "b")
		// A successful txn with several writes is one revision.
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Value("t1"), "=", "a"),
				clientv3.Compare(clientv3.Version("t2"), ">", 0),
				clientv3.Compare(clientv3.CreateRevision("missing"), "=", 0),
				clientv3.Compare(clientv3.ModRevision("t1"), "=", p.Header.Revision)).
			Then(clientv3.OpPut("t1", "A"), clientv3.OpPut("t3", "C"), clientv3.OpGet("t1"),
				// As in etcd, every compare, nested ones included, is
				// evaluated against the state before the txn.
				clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value("t1"), "=", "a")},
					[]clientv3.Op{clientv3.OpDelete("t2")}, nil)).
			Else(clientv3.OpPut("never", "x")).
			Commit()
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Succeeded || len(resp.Responses) != 4 {
			t.Fatalf("txn = %+v", resp)
		}
		if got := resp.Responses[2].GetResponseRange().Kvs[0].Value; string(got) != "A" {
			t.Errorf("read inside txn saw %q, want its own write", got)
		}
		if !resp.Responses[3].GetResponseTxn().Succeeded {
			t.Errorf("nested txn compare not evaluated against the state before the txn")
		}
		g, _ := cli.Get(ctx, "t", clientv3.WithPrefix())
		if keys(g) != "t1,t3" {
			t.Fatalf("after txn keys = %q", keys(g))
		}
		for _, kv := range g.Kvs {
			if kv.ModRevision != resp.Header.Revision {
				t.Errorf("%s mod revision %d, txn revision %d", kv.Key, kv.ModRevision, resp.Header.Revision)
			}
		}
		// A failed compare runs the else branch; a read-only txn does not
		// bump the revision.
		f, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("t1"), "=", "zzz")).Else(clientv3.OpGet("t1")).Commit()
		if err != nil || f.Succeeded || f.Header.Revision != resp.Header.Revision {
			t.Fatalf("failed txn = %+v, %v", f, err)
		}
		// A compare over a range holds for every key in it.
		r, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("t"), ">", 0).WithPrefix()).Commit()
		if err != nil || !r.Succeeded {
			t.Fatalf("range compare = %+v, %v", r, err)
		}
		r, _ = cli.Txn(ctx).If(clientv3.Compare(clientv3.Value("t").WithPrefix(), "=", "A")).Commit()
		if r.Succeeded {
			t.Fatal("range value compare succeeded though t3 differs")
		}
	})
}

func TestKVCompaction(t *testing.T) {
	forEachCluster(t, func(t *testing.T, c *agenttest.Cluster, cli *clientv3.Client) {
		ctx := t.Context()
		var revs []int64
		for i := range 5 {
			p, _ := cli.Put(ctx, "c", fmt.Sprint(i))
			revs = append(revs, p.Header.Revision)
		}
		if _, err := cli.Compact(ctx, revs[3], clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Get(ctx, "c", clientv3.WithRev(revs[1])); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("read below compaction: %v", err)
		}
		if g, err := cli.Get(ctx, "c", clientv3.WithRev(revs[3])); err != nil || string(g.Kvs[0].Value) != "3" {
			t.Fatalf("read at compaction revision = %v, %v", g, err)
		}
		if _, err := cli.Compact(ctx, revs[2]); !errors.Is(err, rpctypes.ErrCompacted) {
			t.Fatalf("compact below compaction: %v", err)
		}
		if _, err := cli.Compact(ctx, revs[4]+100); !errors.Is(err, rpctypes.ErrFutureRev) {
			t.Fatalf("compact in the future: %v", err)
		}
		if _, err := cli.Get(ctx, "c", clientv3.WithRev(revs[4]+100)); !errors.Is(err, rpctypes.ErrFutureRev) {
			t.Fatalf("read in the future: %v", err)
		}
		g, _ := cli.Get(ctx, "c")
		if g.Header.Revision != revs[4] {
			t.Fatalf("compaction bumped the revision: %d, want %d", g.Header.Revision, revs[4])
		}
		h, err := cli.HashKV(ctx, "http://"+c.Members[0].ClientAddr, 0)
		if err != nil || h.CompactRevision != revs[3] {
			t.Fatalf("hashkv = %+v, %v", h, err)
		}
	})
}

// TestBadRequests sends malformed and oversized requests straight through
// the generated gRPC client (clientv3 refuses some of them itself) and
// checks etcd's code and message, and that nothing was written.
func TestBadRequests(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	ctx := t.Context()
	kv := pb.NewKVClient(cli.ActiveConnection())
	cluster := pb.NewClusterClient(cli.ActiveConnection())
	before, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cli.Put(ctx, "present", "v")
	cli.Put(ctx, "present", "v2")
	if _, err := cli.Compact(ctx, p.Header.Revision+1); err != nil {
		t.Fatal(err)
	}
	put := func(k string) *pb.RequestOp {
		return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(k), Value: []byte("v")}}}
	}
	manyOps := make([]*pb.RequestOp, 129)
	for i := range manyOps {
		manyOps[i] = put(fmt.Sprintf("op%d", i))
	}
	big := make([]byte, 1600*1024) // over max-request-bytes (1.5 MiB), under gRPC's own limit
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"put empty key", func() error { _, err := kv.Put(ctx, &pb.PutRequest{Value: []byte("v")}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"range empty key", func() error { _, err := kv.Range(ctx, &pb.RangeRequest{}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"delete empty key", func() error { _, err := kv.DeleteRange(ctx, &pb.DeleteRangeRequest{}); return err }, rpctypes.ErrGRPCEmptyKey},
		{"ignore value with value", func() error {
			_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Value: []byte("v"), IgnoreValue: true})
			return err
		}, rpctypes.ErrGRPCValueProvided},
		{"ignore lease with lease", func() error {
			_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("k"), Lease: 5, IgnoreLease: true})
			return err
		}, rpctypes.ErrGRPCLeaseProvided},
		{"bad sort order", func() error {
			_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("k"), SortOrder: 7})
			return err
		}, rpctypes.ErrGRPCInvalidSortOption},
		{"too many txn ops", func() error { _, err := kv.Txn(ctx, &pb.TxnRequest{Success: manyOps}); return err }, rpctypes.ErrGRPCTooManyOps},
		{"duplicate key in txn", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{put("d"), put("d")}})
			return err
		}, rpctypes.ErrGRPCDuplicateKey},
		{"empty op in txn", func() error {
			_, err := kv.Txn(ctx, &pb.TxnRequest{Success: []*pb.RequestOp{{}}})
			return err
		}, rpctypes.ErrGRPCKeyNotFound},
		{"request too large", func() error {
			_, err := kv.Put(ctx, &pb.PutRequest{Key: []byte("big"), Value: big})
			return err
		}, rpctypes.ErrGRPCRequestTooLarge},
		{"compacted revision", func() error {
			_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("present"), Revision: p.Header.Revision})
			return err
		}, rpctypes.ErrGRPCCompacted},
		{"future revision", func() error {
			_, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("present"), Revision: 1 << 40})
			return err
		}, rpctypes.ErrGRPCFutureRev},
		{"range end before key", func() error {
			// etcd answers an empty range, not an error; nothing is read.
			resp, err := kv.Range(ctx, &pb.RangeRequest{Key: []byte("z"), RangeEnd: []byte("a")})
			if err == nil && len(resp.Kvs) != 0 {
				return fmt.Errorf("got %d keys", len(resp.Kvs))
			}
			return err
		}, nil},
		{"remove unknown member", func() error { _, err := cluster.MemberRemove(ctx, &pb.MemberRemoveRequest{ID: 42}); return err }, rpctypes.ErrGRPCMemberNotFound},
		{"promote unknown member", func() error { _, err := cluster.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: 42}); return err }, rpctypes.ErrGRPCMemberNotFound},
		{"update unknown member", func() error {
			_, err := cluster.MemberUpdate(ctx, &pb.MemberUpdateRequest{ID: 42, PeerURLs: []string{"http://127.0.0.1:1"}})
			return err
		}, rpctypes.ErrGRPCMemberNotFound},
		{"add member with bad URL", func() error {
			_, err := cluster.MemberAdd(ctx, &pb.MemberAddRequest{PeerURLs: []string{"not a url"}})
			return err
		}, rpctypes.ErrGRPCMemberBadURLs},
		{"promote a voter", func() error {
			_, err := cluster.MemberPromote(ctx, &pb.MemberPromoteRequest{ID: c.Members[0].Agent.Server().ID()})
			return err
		}, rpctypes.ErrGRPCMemberNotLearner},
	}
	for _, tc := range cases {
		err := tc.call()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.want.Error() {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	after, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if after.Count != before.Count+1 || after.Header.Revision != p.Header.Revision+1 {
		t.Fatalf("bad requests changed the store: %d keys at rev %d, want %d at %d",
			after.Count, after.Header.Revision, before.Count+1, p.Header.Revision+1)
	}
}
