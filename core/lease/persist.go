package lease

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordkv/concord/core/backend"
)

// Bucket holds one row per granted lease, etcd's layout: the key is the
// lease ID as 8 bytes big-endian, the value etcd's leasepb.Lease message
// (ID = 1, TTL = 2, RemainingTTL = 3, all int64). The keys attached to a
// lease are not stored: they are in the key-value store, which re-attaches
// them when it opens.
const Bucket backend.Bucket = "lease"

func rowKey(id int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(id)) }

// encodeRow marshals a row as leasepb.Lease would (zero fields omitted,
// fields in number order), so the bytes are the same on every member.
func encodeRow(id, ttl, remaining int64) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{1, id}, {2, ttl}, {3, remaining}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(f.v))
		}
	}
	return b
}

func decodeRow(b []byte) (id, ttl, remaining int64, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, 0, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.VarintType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, 0, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, 0, 0, protowire.ParseError(n)
		}
		b = b[n:]
		switch num {
		case 1:
			id = int64(v)
		case 2:
			ttl = int64(v)
		case 3:
			remaining = int64(v)
		}
	}
	return id, ttl, remaining, nil
}

// persistLocked writes le's row. Applier only.
func (l *Lessor) persistLocked(le *lease) {
	l.be.Put(Bucket, rowKey(le.id), encodeRow(le.id, le.ttl, le.remaining))
}

// loadRows reads every lease row of be.
func loadRows(be *backend.Backend) (map[int64]*lease, error) {
	rows, err := be.Range(Bucket, nil, nil, 0)
	if err != nil {
		return nil, fmt.Errorf("load leases: %w", err)
	}
	leases := make(map[int64]*lease, len(rows))
	for _, row := range rows {
		id, ttl, remaining, err := decodeRow(row.Value)
		if err != nil {
			return nil, fmt.Errorf("load lease %x: %w", row.Key, err)
		}
		leases[id] = newLease(id, ttl, remaining)
	}
	return leases, nil
}
