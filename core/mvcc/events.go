package mvcc

import (
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/backend"
)

// Events reads from storage the events of revisions fromRev..toRev
// (inclusive; toRev <= 0 or beyond the store means the current revision)
// on keys in [key, end) (etcd range conventions: empty end = the key
// alone, "\x00" = every key >= key), in revision and sub-revision order.
// PUT events carry the stored KeyValue; DELETE events a KeyValue with the
// key and mod_revision = the delete's revision. It stops at the end of the
// revision in which the events reach limit (limit <= 0: no limit) and
// returns nextRev, the revision to continue from. fromRev below the
// compact revision → ErrCompacted (as etcd's watch: the compact revision
// itself still has all its events). Any goroutine.
func (s *Store) Events(key, end []byte, fromRev, toRev int64, limit int) (events []*mvccpb.Event, nextRev int64, err error) {
	st := s.state.Load()
	if fromRev < st.compactRev {
		return nil, 0, ErrCompacted
	}
	if toRev <= 0 || toRev > st.rev {
		toRev = st.rev
	}
	fromRev = max(fromRev, 1)
	if fromRev > toRev {
		return nil, fromRev, nil
	}
	end = normalizeEnd(end)
	nextRev = toRev + 1
	err = s.be.Read(func(v *backend.ReadView) error {
		lastRev := int64(0)
		for k, val := range v.Range(KeyBucket, mainRevStart(fromRev), mainRevStart(toRev+1), 0) {
			r, tomb, err := bytesToRev(k)
			if err != nil {
				return err
			}
			if limit > 0 && len(events) >= limit && r.main != lastRev {
				nextRev = r.main
				return nil
			}
			lastRev = r.main
			kv := &mvccpb.KeyValue{}
			if err := proto.Unmarshal(val, kv); err != nil {
				return fmt.Errorf("%w: unmarshal revision %d.%d: %v", errInternal, r.main, r.sub, err)
			}
			if !inRange(kv.Key, key, end) {
				continue
			}
			if tomb {
				events = append(events, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: kv.Key, ModRevision: r.main}})
			} else {
				events = append(events, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv})
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	// Rows below a compaction scheduled during the scan may be gone.
	if s.state.Load().compactRev > fromRev {
		return nil, 0, ErrCompacted
	}
	return events, nextRev, nil
}
