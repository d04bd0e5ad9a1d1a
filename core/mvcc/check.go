package mvcc

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// Request validation with etcd's rules (v3rpc key.go). The API edge calls
// these before proposing; the Store calls the per-op checks again so a bad
// request can never be half-applied.

// CheckRange validates a RangeRequest: a key, a known sort order/target.
func CheckRange(r *pb.RangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	if _, ok := pb.RangeRequest_SortOrder_name[int32(r.SortOrder)]; !ok {
		return ErrInvalidSortOption
	}
	if _, ok := pb.RangeRequest_SortTarget_name[int32(r.SortTarget)]; !ok {
		return ErrInvalidSortOption
	}
	return nil
}

// CheckPut validates a PutRequest: a key; no value with ignore_value; no
// lease with ignore_lease.
func CheckPut(r *pb.PutRequest) error {
	switch {
	case len(r.Key) == 0:
		return ErrEmptyKey
	case r.IgnoreValue && len(r.Value) != 0:
		return ErrValueProvided
	case r.IgnoreLease && r.Lease != 0:
		return ErrLeaseProvided
	}
	return nil
}

// CheckDeleteRange validates a DeleteRangeRequest: a key.
func CheckDeleteRange(r *pb.DeleteRangeRequest) error {
	if len(r.Key) == 0 {
		return ErrEmptyKey
	}
	return nil
}

// CheckTxn validates a TxnRequest as etcd's API edge does: at most maxOps
// operations in the compare list and in each branch (nested txns share the
// remaining budget), every op valid, and no key written twice in a way
// that could collide: within one branch (nested branches included) a key
// may be put once and not also fall in a deleted range. The two branches
// of one nested txn may put the same key, as only one of them runs.
// Returns ErrTooManyOps, ErrDuplicateKey, or a per-op error.
func CheckTxn(r *pb.TxnRequest, maxOps int) error {
	if err := checkTxnOps(r, maxOps); err != nil {
		return err
	}
	if _, _, err := checkIntervals(r.Success); err != nil {
		return err
	}
	_, _, err := checkIntervals(r.Failure)
	return err
}

func checkTxnOps(r *pb.TxnRequest, maxOps int) error {
	opc := max(len(r.Compare), len(r.Success), len(r.Failure))
	if opc > maxOps {
		return ErrTooManyOps
	}
	for _, c := range r.Compare {
		if len(c.Key) == 0 {
			return ErrEmptyKey
		}
	}
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if err := checkRequestOp(op, maxOps-opc); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRequestOp(op *pb.RequestOp, maxOps int) error {
	switch v := op.GetRequest().(type) {
	case *pb.RequestOp_RequestRange:
		return CheckRange(v.RequestRange)
	case *pb.RequestOp_RequestPut:
		return CheckPut(v.RequestPut)
	case *pb.RequestOp_RequestDeleteRange:
		return CheckDeleteRange(v.RequestDeleteRange)
	case *pb.RequestOp_RequestTxn:
		return checkTxnOps(v.RequestTxn, maxOps)
	default:
		return ErrKeyNotFound // etcd's answer to an empty op
	}
}

// interval is a half-open key range [begin, end); end == "" is unbounded.
// Point deletes are [key, key+"\x00"), as etcd's affine intervals.
type interval struct{ begin, end string }

func (iv interval) contains(k string) bool {
	return iv.begin <= k && (iv.end == "" || k < iv.end)
}

type intervals []interval

func (s intervals) containsPoint(k string) bool {
	for _, iv := range s {
		if iv.contains(k) {
			return true
		}
	}
	return false
}

// checkIntervals mirrors etcd's: it returns the keys put and ranges
// deleted by ops (recursively) or ErrDuplicateKey on an overlap.
func checkIntervals(ops []*pb.RequestOp) (map[string]struct{}, intervals, error) {
	var dels intervals
	for _, op := range ops {
		d := op.GetRequestDeleteRange()
		if d == nil {
			continue
		}
		if len(d.RangeEnd) != 0 {
			// Like etcd, range_end "\x00" is taken literally here.
			dels = append(dels, interval{string(d.Key), string(d.RangeEnd)})
		} else {
			dels = append(dels, interval{string(d.Key), string(d.Key) + "\x00"})
		}
	}
	puts := make(map[string]struct{})
	for _, op := range ops {
		t := op.GetRequestTxn()
		if t == nil {
			continue
		}
		putsThen, delsThen, err := checkIntervals(t.Success)
		if err != nil {
			return nil, dels, err
		}
		putsElse, delsElse, err := checkIntervals(t.Failure)
		if err != nil {
			return nil, dels, err
		}
		// Visit keys in sorted order so the outcome never depends on map
		// iteration (it cannot differ, but keep the habit).
		for _, k := range sortedKeys(putsThen) {
			if _, dup := puts[k]; dup || dels.containsPoint(k) {
				return nil, dels, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		for _, k := range sortedKeys(putsElse) {
			if _, dup := puts[k]; dup {
				if _, fromThen := putsThen[k]; !fromThen {
					return nil, dels, ErrDuplicateKey
				}
			}
			if dels.containsPoint(k) {
				return nil, dels, ErrDuplicateKey
			}
			puts[k] = struct{}{}
		}
		dels = append(dels, delsThen...)
		dels = append(dels, delsElse...)
	}
	for _, op := range ops {
		p := op.GetRequestPut()
		if p == nil {
			continue
		}
		k := string(p.Key)
		if _, dup := puts[k]; dup || dels.containsPoint(k) {
			return nil, dels, ErrDuplicateKey
		}
		puts[k] = struct{}{}
	}
	return puts, dels, nil
}
