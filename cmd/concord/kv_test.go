package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestKV drives kv put, get, del and txn against a one-member cluster and
// checks both their output and, read back with clientv3, their effect.
func TestKV(t *testing.T) {
	c := testcluster.Start(t, 1)
	cl := c.Client()
	x := newCLI(t, c)

	t.Run("put", func(t *testing.T) {
		wantOutput(t, "put", x.ok("kv", "put", "p/a", "1"), "OK\n")
		if kv := mustGet(t, cl, "p/a").Kvs; len(kv) != 1 || string(kv[0].Value) != "1" {
			t.Fatalf("p/a after put: %v", kv)
		}
		wantOutput(t, "put --prev-kv", x.ok("kv", "put", "p/a", "2", "--prev-kv"), "OK\np/a\n1\n")

		r := x.runIn("from stdin\n", "kv", "put", "p/stdin")
		if r.err != nil {
			t.Fatalf("put from stdin: %v", r.err)
		}
		if got := string(mustGet(t, cl, "p/stdin").Kvs[0].Value); got != "from stdin\n" {
			t.Errorf("value from stdin = %q", got)
		}

		// A value that looks like a flag goes after "--".
		x.ok("kv", "put", "--", "p/dash", "-v")
		if got := string(mustGet(t, cl, "p/dash").Kvs[0].Value); got != "-v" {
			t.Errorf("value after -- = %q", got)
		}
	})

	t.Run("put with lease", func(t *testing.T) {
		lease, err := cl.Grant(t.Context(), 60)
		if err != nil {
			t.Fatal(err)
		}
		hexID := strconv.FormatInt(int64(lease.ID), 16)
		x.ok("kv", "put", "l/a", "v1", "--lease", hexID)
		if kv := mustGet(t, cl, "l/a").Kvs[0]; kv.Lease != int64(lease.ID) {
			t.Fatalf("lease of l/a = %x, want %s", kv.Lease, hexID)
		}
		// --ignore-lease keeps the lease, --ignore-value the value.
		x.ok("kv", "put", "l/a", "v2", "--ignore-lease")
		x.ok("kv", "put", "l/a", "--ignore-value", "--lease", "0")
		kv := mustGet(t, cl, "l/a").Kvs[0]
		if string(kv.Value) != "v2" || kv.Lease != 0 {
			t.Errorf("after --ignore-lease then --ignore-value: value %q lease %x, want v2 and no lease", kv.Value, kv.Lease)
		}

		r := x.run("kv", "put", "l/b", "v", "--lease", "123abc")
		if r.code != exitGeneral {
			t.Fatalf("put with an unknown lease: exit %d, want %d", r.code, exitGeneral)
		}
		wantOutput(t, "unknown lease", r.stderr, "Error: etcdserver: requested lease not found\n")
		if n := mustGet(t, cl, "l/b").Count; n != 0 {
			t.Errorf("l/b written despite the error")
		}
	})

	// Keys g/a..g/e with values 5..1: the order by value is the reverse of
	// the order by key.
	keys := []string{"g/a", "g/b", "g/c", "g/d", "g/e"}
	var revs []int64
	for i, k := range keys {
		revs = append(revs, mustPut(t, cl, k, strconv.Itoa(5-i)).Header.Revision)
	}
	mustPut(t, cl, "g/a", "50")
	mustPut(t, cl, "h", "after-g")

	t.Run("get", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"g/b"}, "g/b\n4\n"},
			{[]string{"g/none"}, ""},
			{[]string{"g/", "--prefix"}, "g/a\n50\ng/b\n4\ng/c\n3\ng/d\n2\ng/e\n1\n"},
			{[]string{"g/b", "g/d"}, "g/b\n4\ng/c\n3\n"},
			{[]string{"g/d", "--from-key", "--limit", "3"}, "g/d\n2\ng/e\n1\nh\nafter-g\n"},
			{[]string{"g/", "--prefix", "--limit", "2"}, "g/a\n50\ng/b\n4\n"},
			{[]string{"g/", "--prefix", "--keys-only"}, "g/a\n\ng/b\n\ng/c\n\ng/d\n\ng/e\n\n"},
			{[]string{"g/", "--prefix", "--print-value-only"}, "50\n4\n3\n2\n1\n"},
			{[]string{"g/", "--prefix", "--order", "DESCEND", "--limit", "1"}, "g/e\n1\n"},
			{[]string{"g/", "--prefix", "--sort-by", "VALUE", "--print-value-only"}, "1\n2\n3\n4\n50\n"},
			{[]string{"g/", "--prefix", "--sort-by", "modify", "--order", "descend", "--keys-only", "--limit", "1"}, "g/a\n\n"},
			{[]string{"g/a", "--rev", fmt.Sprint(revs[0])}, "g/a\n5\n"},
			{[]string{"g/b", "--consistency", "s"}, "g/b\n4\n"},
			{[]string{"g/", "--prefix", "--min-mod-rev", fmt.Sprint(revs[3]), "--max-mod-rev", fmt.Sprint(revs[4]), "--keys-only"}, "g/d\n\ng/e\n\n"},
			{[]string{"g/", "--prefix", "--max-create-rev", fmt.Sprint(revs[1]), "--keys-only"}, "g/a\n\ng/b\n\n"},
			{[]string{"g/", "--prefix", "--min-create-rev", fmt.Sprint(revs[4]), "--keys-only"}, "g/e\n\n"},
			{[]string{"g/b", "--hex"}, `\x67\x2f\x62` + "\n" + `\x34` + "\n"},
			{[]string{"g/", "--prefix", "--count-only", "-w", "fields"}, ""}, // checked below
		} {
			got := x.ok(append([]string{"kv", "get"}, tc.args...)...)
			if strings.Contains(strings.Join(tc.args, " "), "--count-only") {
				if !strings.Contains(got, `"Count" : 5`) || strings.Contains(got, `"Key"`) {
					t.Errorf("get --count-only -w fields: %q", got)
				}
				continue
			}
			wantOutput(t, "get "+strings.Join(tc.args, " "), got, tc.want)
		}
	})

	t.Run("get json", func(t *testing.T) {
		var resp struct {
			Header struct {
				Revision int64 `json:"revision"`
			} `json:"header"`
			Kvs []struct {
				Key            []byte `json:"key"`
				Value          []byte `json:"value"`
				CreateRevision int64  `json:"create_revision"`
				ModRevision    int64  `json:"mod_revision"`
				Version        int64  `json:"version"`
			} `json:"kvs"`
			Count int64 `json:"count"`
			More  bool  `json:"more"`
		}
		out := x.ok("kv", "get", "g/", "--prefix", "--limit", "1", "-w", "json")
		if err := json.Unmarshal([]byte(out), &resp); err != nil {
			t.Fatalf("get -w json is not JSON: %v: %q", err, out)
		}
		if resp.Count != 5 || !resp.More || len(resp.Kvs) != 1 {
			t.Fatalf("get -w json: count %d more %v kvs %d, want 5 true 1", resp.Count, resp.More, len(resp.Kvs))
		}
		kv := resp.Kvs[0]
		if string(kv.Key) != "g/a" || string(kv.Value) != "50" || kv.Version != 2 || kv.CreateRevision != revs[0] || kv.ModRevision <= revs[4] {
			t.Errorf("get -w json kv: %+v", kv)
		}
	})

	t.Run("del", func(t *testing.T) {
		for _, k := range []string{"d/a", "d/b", "d/c", "d/d", "zz/a", "zz/b"} {
			mustPut(t, cl, k, "v-"+k)
		}
		wantOutput(t, "del one", x.ok("kv", "del", "d/a", "--prev-kv"), "1\nd/a\nv-d/a\n")
		wantOutput(t, "del missing", x.ok("kv", "del", "d/a"), "0\n")
		wantOutput(t, "del range", x.ok("kv", "del", "d/b", "d/c", "--range"), "1\n")
		wantOutput(t, "del prefix", x.ok("kv", "del", "d/", "--prefix"), "2\n")
		if n := mustGet(t, cl, "d/", clientv3.WithPrefix()).Count; n != 0 {
			t.Errorf("%d keys left under d/", n)
		}
		// A range delete without --range waits for an interrupt first; one
		// that comes deletes nothing.
		mustPut(t, cl, "y/c", "kept")
		interrupted, cancel := context.WithCancel(t.Context())
		cancel()
		r := execute(interrupted, "", "kv", "del", "y/c", "y/e", "--endpoints="+strings.Join(c.Endpoints(), ","))
		if r.code != exitGeneral || !strings.HasPrefix(r.stderr, `Warning: Keys between "y/c" and "y/e" will be deleted.`) ||
			!strings.HasSuffix(r.stderr, "Error: range delete interrupted: nothing was deleted\n") {
			t.Errorf("interrupted range delete: exit %d, stderr %q", r.code, r.stderr)
		}
		if n := mustGet(t, cl, "y/c").Count; n != 1 {
			t.Errorf("y/c deleted by an interrupted range delete")
		}

		// Nothing sorts after zz/b.
		wantOutput(t, "del from-key", x.ok("kv", "del", "zz/", "--from-key"), "2\n")
		if n := mustGet(t, cl, "zz/", clientv3.WithFromKey()).Count; n != 0 {
			t.Errorf("%d keys left from zz/ after del --from-key", n)
		}
	})

	t.Run("txn", func(t *testing.T) {
		mustPut(t, cl, "t/k", "v1")
		rev := mustGet(t, cl, "t/k").Kvs[0].ModRevision
		in := fmt.Sprintf("value(\"t/k\") = \"v1\"\nmod(\"t/k\") = \"%d\"\nversion(\"t/k\") > \"0\"\ncreate(\"t/none\") = \"0\"\nlease(\"t/k\") = \"0\"\n\n"+
			"put t/k v2\nget t/k\ndel t/other\n\nput t/failed yes\n\n", rev)
		r := x.runIn(in, "kv", "txn")
		if r.err != nil {
			t.Fatalf("txn: %v\n%s", r.err, r.stderr)
		}
		wantOutput(t, "txn success", r.stdout, "SUCCESS\n\nOK\n\nt/k\nv2\n\n0\n")

		// The same compares fail now that t/k is v2: the else branch runs.
		r = x.runIn(in, "kv", "txn", "-i")
		if r.err != nil {
			t.Fatalf("txn -i: %v\n%s", r.err, r.stderr)
		}
		wantOutput(t, "txn failure", r.stdout, "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nFAILURE\n\nOK\n")
		if got := string(mustGet(t, cl, "t/failed").Kvs[0].Value); got != "yes" {
			t.Errorf("else branch: t/failed = %q", got)
		}

		// Quoted words, flags inside requests, and input that ends without
		// the final blank line.
		r = x.runIn("\nput t/q \"two words\"\nget t/ --prefix --keys-only\n", "kv", "txn")
		if r.err != nil {
			t.Fatalf("txn with quotes: %v\n%s", r.err, r.stderr)
		}
		wantOutput(t, "txn quotes", r.stdout, "SUCCESS\n\nOK\n\nt/failed\n\nt/k\n\nt/q\n\n")
		if got := string(mustGet(t, cl, "t/q").Kvs[0].Value); got != "two words" {
			t.Errorf("quoted value = %q", got)
		}

		out := x.runIn("\nput t/j 1\n\n\n", "kv", "txn", "-w", "json").stdout
		if !strings.HasPrefix(out, `{"header":`) || !strings.Contains(out, `"succeeded":true`) || !strings.Contains(out, `"responses":[{"Response":{"response_put":`) {
			t.Errorf("txn -w json: %q", out)
		}
	})

	t.Run("server errors", func(t *testing.T) {
		head := mustGet(t, cl, "any").Header.Revision
		r := x.run("kv", "get", "g/a", "--rev", fmt.Sprint(head+1000))
		if r.code != exitGeneral {
			t.Errorf("future revision: exit %d", r.code)
		}
		wantOutput(t, "future revision", r.stderr, "Error: etcdserver: mvcc: required revision is a future revision\n")

		if _, err := cl.Compact(t.Context(), head); err != nil {
			t.Fatal(err)
		}
		r = x.run("kv", "get", "g/a", "--rev", fmt.Sprint(revs[0]))
		if r.code != exitGeneral {
			t.Errorf("compacted revision: exit %d", r.code)
		}
		wantOutput(t, "compacted revision", r.stderr, "Error: etcdserver: mvcc: required revision has been compacted\n")
	})
}
