package mvcc

import (
	"hash/crc32"

	"github.com/concordkv/concord/core/backend"
)

// HashKV returns a CRC-32C (Castagnoli) of the key bucket as of revision
// rev (0 = current), with the compact revision it was computed under; the
// same on every member that applied the same log, whether or not its
// compaction has physically finished.
//
// Exactly what is hashed, in this order: the bucket name "key"; then, for
// every row of the key bucket in revision order whose main revision is
// <= rev, the row key (17 bytes, 18 for a tombstone; see revision.go)
// followed by the row value (the marshaled mvccpb.KeyValue). Rows whose main
// revision is <= the compact revision are included only if they are what a
// finished compaction keeps as a live value: the revision of each key that
// exists at the compact revision. So rows that compaction removes, and
// tombstones at or below the compact revision, are never hashed. This is
// etcd's HashKV definition.
//
// rev < CompactRevision → ErrCompacted; rev > Rev → ErrFutureRev.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev, compactRev int64, err error) {
	for {
		st := s.state.Load()
		hashRev = rev
		switch {
		case rev > st.rev:
			return 0, 0, 0, ErrFutureRev
		case rev <= 0:
			hashRev = st.rev
		case rev < st.compactRev:
			return 0, 0, 0, ErrCompacted
		}
		compactRev = st.compactRev
		keep := map[revision]struct{}{}
		if compactRev > 0 {
			st.idx.Ascend(func(ki *keyIndex) bool {
				if mod, _, _, ok := ki.get(compactRev); ok {
					keep[mod] = struct{}{}
				}
				return true
			})
		}
		h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		h.Write([]byte(KeyBucket))
		err = s.be.Read(func(v *backend.ReadView) error {
			for k, val := range v.Range(KeyBucket, nil, mainRevStart(hashRev+1), 0) {
				r, _, err := bytesToRev(k)
				if err != nil {
					return err
				}
				if r.main <= compactRev {
					if _, ok := keep[r]; !ok {
						continue
					}
				}
				h.Write(k)
				h.Write(val)
			}
			return nil
		})
		if err != nil {
			return 0, 0, 0, err
		}
		// A compaction scheduled meanwhile may have removed rows we hashed
		// or skipped differently: hash again under the new state.
		if s.state.Load().compactRev == compactRev {
			return h.Sum32(), hashRev, compactRev, nil
		}
	}
}
