package mvcc

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/concordkv/concord/core/backend"
)

// Txn applies a TxnRequest with etcd's semantics: every compare (those of
// nested txns too) is evaluated first against the state before the txn;
// then the chosen branch is checked (leases, ignore_* keys, range
// revisions) and, if all is well, executed as ONE revision whose ops get
// consecutive sub-revisions. Ops see the writes of earlier ops. A txn that
// changes nothing does not bump the revision. On error nothing is applied.
// Writer goroutine only.
func (s *Store) Txn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	// The API edge has checked the op budget; re-check shapes and
	// duplicate keys so a txn can never fail half-way.
	if err := CheckTxn(r, int(^uint(0)>>1)); err != nil {
		return nil, err
	}
	tw, err := s.beginWrite()
	if err != nil {
		return nil, err
	}
	defer tw.end()

	path, err := tw.pathFor(r)
	if err != nil {
		return nil, err
	}
	resp, _, err := tw.execute(r, path)
	if err != nil {
		// Checked ops cannot fail; if one does, part of the txn may be
		// applied already and members could diverge: stop the applier.
		panic(fmt.Sprintf("mvcc: txn failed after its checks passed: %v", err))
	}
	resp.Header = &pb.ResponseHeader{Revision: tw.rev()}
	return resp, nil
}

// ReadTxn evaluates a txn whose every op only reads (IsReadOnlyTxn) at the
// current revision, like Txn would, but on the published read state: any
// goroutine may call it, concurrently with the writer, and it never
// changes the store. etcd answers such txns without the log the same way.
func (s *Store) ReadTxn(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	if !IsReadOnlyTxn(r) {
		return nil, fmt.Errorf("mvcc: ReadTxn of a txn that writes")
	}
	if err := CheckTxn(r, int(^uint(0)>>1)); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		st := s.state.Load()
		tw := &writeTxn{s: s, beginRev: st.rev, ro: st}
		resp, err := tw.evaluate(r)
		// Overtaken by a compaction, like Range: read again at "now".
		if errors.Is(err, ErrCompacted) && attempt < 10 {
			continue
		}
		return resp, err
	}
}

// pathFor evaluates r's comparisons (nested txns' too) and checks the
// branches they choose: the path execute then takes.
func (tw *writeTxn) pathFor(r *pb.TxnRequest) ([]bool, error) {
	var path []bool
	err := tw.s.be.Read(func(v *backend.ReadView) error {
		var err error
		path, err = tw.comparePath(v, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	if _, err := tw.checkBranch(r, path); err != nil {
		return nil, err
	}
	return path, nil
}

// evaluate runs a read-only txn on tw's read state.
func (tw *writeTxn) evaluate(r *pb.TxnRequest) (*pb.TxnResponse, error) {
	path, err := tw.pathFor(r)
	if err != nil {
		return nil, err
	}
	resp, _, err := tw.execute(r, path)
	if err != nil {
		return nil, err
	}
	resp.Header = &pb.ResponseHeader{Revision: tw.beginRev}
	return resp, nil
}

// IsReadOnlyTxn reports whether every op of r, nested txns included, is a
// range: such a txn changes nothing and needs no log entry.
func IsReadOnlyTxn(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			switch v := op.GetRequest().(type) {
			case *pb.RequestOp_RequestRange:
			case *pb.RequestOp_RequestTxn:
				if !IsReadOnlyTxn(v.RequestTxn) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// comparePath evaluates the compares of r and of every nested txn on the
// chosen branches, depth first, like etcd's compareToPath.
func (tw *writeTxn) comparePath(v *backend.ReadView, r *pb.TxnRequest) ([]bool, error) {
	ok, err := tw.applyCompares(v, r.Compare)
	if err != nil {
		return nil, err
	}
	path := []bool{ok}
	for _, op := range branch(r, ok) {
		if t := op.GetRequestTxn(); t != nil {
			sub, err := tw.comparePath(v, t)
			if err != nil {
				return nil, err
			}
			path = append(path, sub...)
		}
	}
	return path, nil
}

func branch(r *pb.TxnRequest, succeeded bool) []*pb.RequestOp {
	if succeeded {
		return r.Success
	}
	return r.Failure
}

func (tw *writeTxn) applyCompares(v *backend.ReadView, cmps []*pb.Compare) (bool, error) {
	for _, c := range cmps {
		ok, err := tw.applyCompare(v, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// applyCompare checks c against every key in its range at the current
// revision. No key: VALUE fails, other targets compare against zero.
func (tw *writeTxn) applyCompare(v *backend.ReadView, c *pb.Compare) (bool, error) {
	rev := tw.rev()
	var hits []hit
	var leases []int64
	visit(tw.index(), c.Key, normalizeEnd(c.RangeEnd), func(ki *keyIndex) bool {
		if mod, created, ver, ok := ki.get(rev); ok {
			hits = append(hits, hit{key: ki.key, mod: mod, created: created, ver: ver})
			leases = append(leases, ki.lease)
		}
		return true
	})
	if len(hits) == 0 {
		if c.Target == pb.Compare_VALUE {
			return false, nil
		}
		return compareKV(c, &mvccpb.KeyValue{}), nil
	}
	if c.Target == pb.Compare_VALUE {
		if err := tw.s.loadValues(v, hits, rev); err != nil {
			return false, err
		}
	}
	for i, h := range hits {
		kv := h.kv
		if kv == nil {
			kv = &mvccpb.KeyValue{Key: h.key, CreateRevision: h.created, ModRevision: h.mod.main, Version: h.ver, Lease: leases[i]}
		}
		if !compareKV(c, kv) {
			return false, nil
		}
	}
	return true, nil
}

func compareKV(c *pb.Compare, kv *mvccpb.KeyValue) bool {
	var result int
	switch c.Target {
	case pb.Compare_VALUE:
		result = bytes.Compare(kv.Value, c.GetValue())
	case pb.Compare_CREATE:
		result = cmp.Compare(kv.CreateRevision, c.GetCreateRevision())
	case pb.Compare_MOD:
		result = cmp.Compare(kv.ModRevision, c.GetModRevision())
	case pb.Compare_VERSION:
		result = cmp.Compare(kv.Version, c.GetVersion())
	case pb.Compare_LEASE:
		result = cmp.Compare(kv.Lease, c.GetLease())
	}
	switch c.Result {
	case pb.Compare_EQUAL:
		return result == 0
	case pb.Compare_NOT_EQUAL:
		return result != 0
	case pb.Compare_GREATER:
		return result > 0
	case pb.Compare_LESS:
		return result < 0
	}
	return true
}

// checkBranch validates the ops on the chosen path before anything is
// written (etcd's checkTxn). It returns how many nested txns it consumed.
func (tw *writeTxn) checkBranch(r *pb.TxnRequest, path []bool) (int, error) {
	nested := 0
	for _, op := range branch(r, path[0]) {
		switch v := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			rev := v.RequestRange.Revision
			if rev > tw.rev() {
				return 0, ErrFutureRev
			}
			if rev > 0 && rev < tw.compactRev() {
				return 0, ErrCompacted
			}
		case *pb.RequestOp_RequestPut:
			if err := tw.checkPut(v.RequestPut); err != nil {
				return 0, err
			}
		case *pb.RequestOp_RequestTxn:
			n, err := tw.checkBranch(v.RequestTxn, path[1+nested:])
			if err != nil {
				return 0, err
			}
			nested += n + 1
		}
	}
	return nested, nil
}

// execute runs the chosen branch of r and returns its response (without
// header) and how many nested txns of path it consumed.
func (tw *writeTxn) execute(r *pb.TxnRequest, path []bool) (*pb.TxnResponse, int, error) {
	ops := branch(r, path[0])
	resp := &pb.TxnResponse{Succeeded: path[0], Responses: make([]*pb.ResponseOp, len(ops))}
	nested := 0
	for i, op := range ops {
		out := &pb.ResponseOp{}
		switch v := op.GetRequest().(type) {
		case *pb.RequestOp_RequestRange:
			rr, err := tw.rangeOwn(v.RequestRange)
			if err != nil {
				return nil, 0, fmt.Errorf("txn range: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rr}
		case *pb.RequestOp_RequestPut:
			pr, err := tw.applyPut(v.RequestPut)
			if err != nil {
				return nil, 0, fmt.Errorf("txn put: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponsePut{ResponsePut: pr}
		case *pb.RequestOp_RequestDeleteRange:
			dr, err := tw.applyDeleteRange(v.RequestDeleteRange)
			if err != nil {
				return nil, 0, fmt.Errorf("txn delete: %w", err)
			}
			out.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: dr}
		case *pb.RequestOp_RequestTxn:
			tr, n, err := tw.execute(v.RequestTxn, path[1+nested:])
			if err != nil {
				return nil, 0, err
			}
			tr.Header = &pb.ResponseHeader{}
			nested += n + 1
			out.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: tr}
		}
		resp.Responses[i] = out
	}
	return resp, nested, nil
}
