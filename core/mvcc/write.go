package mvcc

import (
	"bytes"
	"fmt"
	"slices"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// writeTxn is one revision being written. Everything it does happens
// under writeMu on the master index, so reads inside it see its own writes.
type writeTxn struct {
	s        *Store
	beginRev int64
	events   []*mvccpb.Event
	// ro, when set, makes this a read-only txn evaluated on a published
	// read state instead of the writer's master index (see ReadTxn); it
	// then never writes and holds no lock.
	ro *readState
}

// index is the index the txn reads: the master index for the writer, the
// published clone for a read-only txn.
func (tw *writeTxn) index() *indexTree {
	if tw.ro != nil {
		return tw.ro.idx
	}
	return tw.s.idx
}

func (tw *writeTxn) compactRev() int64 {
	if tw.ro != nil {
		return tw.ro.compactRev
	}
	return tw.s.compactRev
}

// beginWrite locks the store for one write request.
func (s *Store) beginWrite() (*writeTxn, error) {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return nil, ErrClosed
	}
	return &writeTxn{s: s, beginRev: s.currentRev}, nil
}

// rev is the revision reads inside the txn see: the new one once the txn
// has changed something.
func (tw *writeTxn) rev() int64 {
	if len(tw.events) > 0 {
		return tw.beginRev + 1
	}
	return tw.beginRev
}

// end publishes the revision (if anything changed), unlocks, and reports
// the events.
func (tw *writeTxn) end() {
	s := tw.s
	if len(tw.events) == 0 {
		s.writeMu.Unlock()
		return
	}
	s.currentRev++
	s.publishLocked()
	rev, events := s.currentRev, tw.events
	// OnWrite runs under writeMu so calls stay in revision order even with
	// a compaction step competing for the lock.
	if s.cfg.OnWrite != nil {
		s.cfg.OnWrite(rev, events)
	}
	s.writeMu.Unlock()
}

func (tw *writeTxn) put(key, value []byte, lease int64) {
	s := tw.s
	rev := revision{main: tw.beginRev + 1, sub: int64(len(tw.events))}
	ki := lookup(s.idx, key)
	created, ver, oldLease := rev.main, int64(1), int64(0)
	if ki != nil && ki.alive() {
		_, c, v, _ := ki.get(rev.main)
		created, ver, oldLease = c, v+1, ki.lease
	}
	if ki == nil {
		ki = &keyIndex{key: bytes.Clone(key)}
	}
	kv := &mvccpb.KeyValue{Key: ki.key, Value: value, CreateRevision: created, ModRevision: rev.main, Version: ver, Lease: lease}
	s.be.Put(KeyBucket, revToBytes(rev, false), mustMarshal(kv))
	s.idx.ReplaceOrInsert(ki.withPut(rev, created, ver, lease))
	tw.events = append(tw.events, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv})
	if oldLease == lease {
		return
	}
	if oldLease != 0 && s.cfg.Leases != nil {
		s.cfg.Leases.Detach(oldLease, ki.key)
	}
	if lease != 0 && s.cfg.Leases != nil {
		s.cfg.Leases.Attach(lease, ki.key)
	}
}

// deleteKey writes a tombstone for a live key.
func (tw *writeTxn) deleteKey(ki *keyIndex) {
	s := tw.s
	rev := revision{main: tw.beginRev + 1, sub: int64(len(tw.events))}
	// etcd stores a tombstone's value as a KeyValue holding only the key.
	s.be.Put(KeyBucket, revToBytes(rev, true), mustMarshal(&mvccpb.KeyValue{Key: ki.key}))
	s.idx.ReplaceOrInsert(ki.withTombstone(rev))
	tw.events = append(tw.events, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: ki.key, ModRevision: rev.main}})
	if ki.lease != 0 && s.cfg.Leases != nil {
		s.cfg.Leases.Detach(ki.lease, ki.key)
	}
}

// deleteRange deletes every key live in [key, end) and returns how many.
func (tw *writeTxn) deleteRange(key, end []byte) int64 {
	var live []*keyIndex
	visit(tw.index(), key, end, func(ki *keyIndex) bool {
		if _, _, _, ok := ki.get(tw.rev()); ok {
			live = append(live, ki)
		}
		return true
	})
	for _, ki := range live {
		tw.deleteKey(ki)
	}
	return int64(len(live))
}

// rangeOwn runs a range inside the txn: current index, own writes visible.
func (tw *writeTxn) rangeOwn(req *pb.RangeRequest) (*pb.RangeResponse, error) {
	return tw.s.rangeIndex(tw.index(), tw.rev(), tw.compactRev(), req, nil)
}

// prevKV returns the current value of key as the txn sees it (nil if none).
func (tw *writeTxn) prevKV(key []byte) (*mvccpb.KeyValue, error) {
	resp, err := tw.rangeOwn(&pb.RangeRequest{Key: key})
	if err != nil || len(resp.Kvs) == 0 {
		return nil, err
	}
	return resp.Kvs[0], nil
}

// checkLease reports ErrLeaseNotFound for an unknown lease.
func (s *Store) checkLease(lease int64) error {
	if lease == 0 {
		return nil
	}
	if s.cfg.Leases == nil || !s.cfg.Leases.Exists(lease) {
		return ErrLeaseNotFound
	}
	return nil
}

// checkPut validates a put against the state the txn sees: lease exists,
// the key exists when ignore_value/ignore_lease need its previous value.
func (tw *writeTxn) checkPut(r *pb.PutRequest) error {
	if err := CheckPut(r); err != nil {
		return err
	}
	if err := tw.s.checkLease(r.Lease); err != nil {
		return err
	}
	if r.IgnoreValue || r.IgnoreLease {
		if ki := lookup(tw.index(), r.Key); ki == nil || !ki.alive() {
			return ErrKeyNotFound
		}
	}
	return nil
}

// applyPut executes a checked put.
func (tw *writeTxn) applyPut(r *pb.PutRequest) (*pb.PutResponse, error) {
	resp := &pb.PutResponse{Header: &pb.ResponseHeader{}}
	value, lease := r.Value, r.Lease
	if r.PrevKv || r.IgnoreValue || r.IgnoreLease {
		prev, err := tw.prevKV(r.Key)
		if err != nil {
			return nil, err
		}
		if prev == nil && (r.IgnoreValue || r.IgnoreLease) {
			return nil, ErrKeyNotFound
		}
		if r.IgnoreValue {
			value = prev.Value
		}
		if r.IgnoreLease {
			lease = prev.Lease
		}
		if r.PrevKv {
			resp.PrevKv = prev
		}
	}
	tw.put(r.Key, value, lease)
	resp.Header.Revision = tw.rev()
	return resp, nil
}

// applyDeleteRange executes a delete.
func (tw *writeTxn) applyDeleteRange(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	resp := &pb.DeleteRangeResponse{Header: &pb.ResponseHeader{}}
	end := normalizeEnd(r.RangeEnd)
	if r.PrevKv {
		rr, err := tw.rangeOwn(&pb.RangeRequest{Key: r.Key, RangeEnd: r.RangeEnd})
		if err != nil {
			return nil, err
		}
		resp.PrevKvs = rr.Kvs
	}
	resp.Deleted = tw.deleteRange(r.Key, end)
	resp.Header.Revision = tw.rev()
	return resp, nil
}

// Put applies a PutRequest. Writer goroutine only. A put bumps the
// revision; on error nothing changes.
func (s *Store) Put(r *pb.PutRequest) (*pb.PutResponse, error) {
	tw, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer tw.end()
	if err := tw.checkPut(r); err != nil {
		return nil, err
	}
	return tw.applyPut(r)
}

// DeleteRange applies a DeleteRangeRequest. Writer goroutine only. The
// revision is bumped only if something was deleted.
func (s *Store) DeleteRange(r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if err := CheckDeleteRange(r); err != nil {
		return nil, err
	}
	tw, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer tw.end()
	return tw.applyDeleteRange(r)
}

// DeleteKeys deletes exactly these keys (those that exist) in one
// revision, as lease revocation needs, and returns the store revision
// afterwards. Keys are deleted in sorted order so every member writes the
// same sub-revisions. Writer goroutine only.
func (s *Store) DeleteKeys(keys [][]byte) (int64, error) {
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)
	tw, err := s.beginWrite()
	if err != nil {
		return 0, err
	}
	defer tw.end()
	for _, k := range sorted {
		if ki := lookup(s.idx, k); ki != nil && ki.alive() {
			tw.deleteKey(ki)
		}
	}
	return tw.rev(), nil
}

func mustMarshal(kv *mvccpb.KeyValue) []byte {
	p, err := proto.Marshal(kv)
	if err != nil {
		// Marshalling a KeyValue cannot fail; if it does, the process
		// must not go on applying a log it cannot store.
		panic(fmt.Sprintf("mvcc: marshal KeyValue: %v", err))
	}
	return p
}
