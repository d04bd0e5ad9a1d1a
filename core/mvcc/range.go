package mvcc

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/backend"
)

// hit is one key found in the index at the read revision.
type hit struct {
	key     []byte
	mod     revision
	created int64
	ver     int64
	kv      *mvccpb.KeyValue // loaded value, if needed
}

// Range answers a RangeRequest with etcd's semantics (see the package
// documentation). resp.Header.Revision is the current store revision, also
// for historical reads; the other header fields are left to the caller.
// Any goroutine may call it, concurrently with writes.
func (s *Store) Range(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	if err := CheckRange(req); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		st := s.state.Load()
		resp, err := s.rangeIndex(st.idx, st.rev, st.compactRev, req, nil)
		// A read of the current revision can be overtaken by a compaction
		// scheduled after it picked its index (the rows it wanted were
		// superseded and removed). It asked for "now", not for a compacted
		// revision: read again at the new current revision.
		if errors.Is(err, ErrCompacted) && req.Revision == 0 && attempt < 10 {
			continue
		}
		return resp, err
	}
}

// RangeAt returns the value of key at revision rev (nil if the key did not
// exist then); the watch hub uses it for prev_kv (rev = event revision - 1).
func (s *Store) RangeAt(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	resp, err := s.Range(&pb.RangeRequest{Key: key, Revision: rev})
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0], nil
}

// rangeIndex runs req against index t whose current revision is curRev.
// view, if set, is a backend view to load values through (the writer passes
// none; readers open their own).
func (s *Store) rangeIndex(t *indexTree, curRev, compactRev int64, req *pb.RangeRequest, view *backend.ReadView) (*pb.RangeResponse, error) {
	rev := req.Revision
	switch {
	case rev > curRev:
		return nil, ErrFutureRev
	case rev <= 0:
		rev = curRev
	}
	if rev < compactRev {
		return nil, ErrCompacted
	}
	resp := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: curRev}}
	key, end := req.Key, normalizeEnd(req.RangeEnd)

	defaultOrder := isDefaultOrdering(req.SortTarget, req.SortOrder)
	// Like etcd: with the default order and no filters, only limit+1 keys
	// are needed to answer (the extra one tells "more"); otherwise all.
	collect := int64(0)
	if defaultOrder && !hasRevisionFilters(req) && req.Limit > 0 {
		collect = req.Limit + 1
	}
	var hits []hit
	var count int64
	visit(t, key, end, func(ki *keyIndex) bool {
		mod, created, ver, ok := ki.get(rev)
		if !ok {
			return true
		}
		count++
		if req.CountOnly || (collect > 0 && int64(len(hits)) >= collect) {
			return true // keep counting: count ignores limit
		}
		h := hit{key: ki.key, mod: mod, created: created, ver: ver}
		if !passesFilters(req, &h) {
			return true
		}
		hits = append(hits, h)
		return true
	})
	resp.Count = count
	if req.CountOnly {
		return resp, nil
	}

	order := req.SortOrder
	if req.SortTarget != pb.RangeRequest_KEY && order == pb.RangeRequest_NONE {
		order = pb.RangeRequest_ASCEND // etcd: a target without an order sorts ascending
	}
	needSort := !isDefaultOrdering(req.SortTarget, order)
	fastKeysOnly := req.KeysOnly && req.SortTarget != pb.RangeRequest_VALUE

	load := func(hs []hit) error {
		if fastKeysOnly {
			return nil
		}
		if view != nil {
			return s.loadValues(view, hs, rev)
		}
		return s.be.Read(func(v *backend.ReadView) error { return s.loadValues(v, hs, rev) })
	}
	if needSort && req.SortTarget == pb.RangeRequest_VALUE {
		if err := load(hits); err != nil {
			return nil, err
		}
	}
	if needSort {
		sortHits(hits, req.SortTarget, order)
	}
	if req.Limit > 0 && int64(len(hits)) > req.Limit {
		hits = hits[:req.Limit]
		resp.More = true
	}
	if !(needSort && req.SortTarget == pb.RangeRequest_VALUE) {
		if err := load(hits); err != nil {
			return nil, err
		}
	}
	resp.Kvs = make([]*mvccpb.KeyValue, len(hits))
	for i := range hits {
		if fastKeysOnly {
			// etcd 3.7 answers keys_only from the index: no value, no lease.
			resp.Kvs[i] = &mvccpb.KeyValue{Key: hits[i].key, CreateRevision: hits[i].created, ModRevision: hits[i].mod.main, Version: hits[i].ver}
			continue
		}
		kv := hits[i].kv
		if req.KeysOnly {
			kv.Value = nil
		}
		resp.Kvs[i] = kv
	}
	return resp, nil
}

// loadValues reads the stored KeyValue of every hit.
func (s *Store) loadValues(v *backend.ReadView, hs []hit, rev int64) error {
	for i := range hs {
		if hs[i].kv != nil {
			continue
		}
		p, ok := v.Get(KeyBucket, revToBytes(hs[i].mod, false))
		if !ok {
			// A compaction that started after we picked the index may have
			// removed the row: then the revision is compacted.
			if s.state.Load().compactRev > rev {
				return ErrCompacted
			}
			return fmt.Errorf("%w: key %q revision %d.%d missing from the key bucket", errInternal, hs[i].key, hs[i].mod.main, hs[i].mod.sub)
		}
		kv := &mvccpb.KeyValue{}
		if err := proto.Unmarshal(p, kv); err != nil {
			return fmt.Errorf("%w: unmarshal revision %d.%d: %v", errInternal, hs[i].mod.main, hs[i].mod.sub, err)
		}
		hs[i].kv = kv
	}
	return nil
}

func isDefaultOrdering(target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) bool {
	return order == pb.RangeRequest_NONE || (target == pb.RangeRequest_KEY && order == pb.RangeRequest_ASCEND)
}

func hasRevisionFilters(r *pb.RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

func passesFilters(r *pb.RangeRequest, h *hit) bool {
	switch {
	case r.MaxModRevision != 0 && h.mod.main > r.MaxModRevision:
		return false
	case r.MinModRevision != 0 && h.mod.main < r.MinModRevision:
		return false
	case r.MaxCreateRevision != 0 && h.created > r.MaxCreateRevision:
		return false
	case r.MinCreateRevision != 0 && h.created < r.MinCreateRevision:
		return false
	}
	return true
}

// sortHits sorts stably (ties stay in key order, so the answer is the same
// on every member).
func sortHits(hs []hit, target pb.RangeRequest_SortTarget, order pb.RangeRequest_SortOrder) {
	var c func(a, b *hit) int
	switch target {
	case pb.RangeRequest_KEY:
		c = func(a, b *hit) int { return bytes.Compare(a.key, b.key) }
	case pb.RangeRequest_VERSION:
		c = func(a, b *hit) int { return cmp.Compare(a.ver, b.ver) }
	case pb.RangeRequest_CREATE:
		c = func(a, b *hit) int { return cmp.Compare(a.created, b.created) }
	case pb.RangeRequest_MOD:
		c = func(a, b *hit) int { return cmp.Compare(a.mod.main, b.mod.main) }
	case pb.RangeRequest_VALUE:
		c = func(a, b *hit) int { return bytes.Compare(a.kv.Value, b.kv.Value) }
	}
	if order == pb.RangeRequest_DESCEND {
		asc := c
		c = func(a, b *hit) int { return -asc(a, b) }
	}
	slices.SortStableFunc(hs, func(a, b hit) int { return c(&a, &b) })
}
