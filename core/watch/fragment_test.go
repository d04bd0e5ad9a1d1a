package watch

import (
	"fmt"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// TestFragment: one revision (a txn of 10 keys of 300 bytes) larger than
// MaxFragmentBytes reaches a watcher that asked for fragment as several
// responses, each under the limit, all but the last flagged Fragment; a
// watcher that did not ask gets it whole.
func TestFragment(t *testing.T) {
	const limit = 1000
	h, store, wr := newTestHub(t, func(c *Config) { c.MaxFragmentBytes = limit })
	s, rec := newTestStream(t, h)
	frag := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("f/"), RangeEnd: prefixEnd("f/"), Fragment: true, PrevKv: true})
	whole := mustWatch(t, s, &pb.WatchCreateRequest{Key: []byte("f/"), RangeEnd: prefixEnd("f/")})
	big := strings.Repeat("v", 300)
	var ops []op
	for i := range 10 {
		ops = append(ops, put(fmt.Sprintf("f/%d", i), big))
	}
	wr.write(ops...)
	// A single event above the limit cannot be split.
	last := wr.write(put("f/huge", strings.Repeat("h", 3*limit)))
	if err := s.RequestProgress(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := rec.waitProgress(t, last)
	want := store.expected([]byte("f/"), prefixEnd("f/"), 1)

	var parts []Response
	for _, r := range rs {
		if r.WatchID == frag && len(r.Events) > 0 {
			parts = append(parts, r)
		}
	}
	if len(parts) < 4 {
		t.Fatalf("%d responses for the fragmenting watcher, want the txn in at least 3 parts plus the huge event", len(parts))
	}
	for i, p := range parts[:len(parts)-1] {
		last := i == len(parts)-2
		if p.Fragment == last {
			t.Fatalf("part %d of the txn: Fragment=%v, want %v", i, p.Fragment, !last)
		}
		if size := proto.Size(p.ToProto(&pb.ResponseHeader{ClusterId: 1, MemberId: 2, RaftTerm: 3})); size >= limit {
			t.Fatalf("part %d encodes to %d bytes, limit %d", i, size, limit)
		}
		if p.Revision != 1 {
			t.Fatalf("part %d header revision %d, want 1", i, p.Revision)
		}
	}
	if hugeResp := parts[len(parts)-1]; hugeResp.Fragment || len(hugeResp.Events) != 1 {
		t.Fatalf("the single huge event: %d events, Fragment=%v; want one, unfragmented", len(hugeResp.Events), hugeResp.Fragment)
	}
	sameEvents(t, "fragmented", eventsOf(rs, frag), want)

	var wholeResps int
	for _, r := range rs {
		if r.WatchID == whole && len(r.Events) > 0 {
			wholeResps++
			if r.Fragment {
				t.Fatal("fragment flag for a watcher that did not ask")
			}
		}
	}
	if wholeResps != 2 {
		t.Fatalf("%d responses for the plain watcher, want 2", wholeResps)
	}
	sameEvents(t, "whole", eventsOf(rs, whole), want)
}

func TestFragmentsFollowsEtcdRule(t *testing.T) {
	ev := func(n int) *mvccpb.Event {
		return &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte("k"), Value: make([]byte, n), ModRevision: 5}}
	}
	r := Response{WatchID: 3, Revision: 5, Events: []*mvccpb.Event{ev(100), ev(100), ev(100)}}
	if parts := fragments(r, 10000); len(parts) != 1 || parts[0].Fragment {
		t.Fatalf("small response split: %d parts", len(parts))
	}
	if parts := fragments(Response{Events: []*mvccpb.Event{ev(5000)}}, 100); len(parts) != 1 {
		t.Fatalf("single event split into %d parts", len(parts))
	}
	parts := fragments(r, 200)
	if len(parts) != 3 {
		t.Fatalf("three 100-byte events at limit 200: %d parts, want 3", len(parts))
	}
	for i, p := range parts {
		if len(p.Events) != 1 || p.Fragment != (i < 2) || p.WatchID != 3 || p.Revision != 5 {
			t.Fatalf("part %d = %+v", i, p)
		}
	}
	// Parts do not alias each other's event slices.
	parts[0].Events = append(parts[0].Events, ev(1))
	if parts[1].Events[0] != r.Events[1] {
		t.Fatal("appending to one part changed the next")
	}
}
