package mvcc

import (
	"encoding/binary"
	"fmt"
)

// revision identifies one write: main is the store revision of the
// request, sub orders the writes inside it (a txn's ops).
type revision struct {
	main, sub int64
}

// Key bucket layout (etcd's): 8 bytes big-endian main, '_', 8 bytes
// big-endian sub, and a trailing 't' for a tombstone. Byte order equals
// revision order.
const (
	revBytesLen       = 17
	markedRevBytesLen = 18
	tombstoneMark     = 't'
)

func revToBytes(r revision, tombstone bool) []byte {
	b := make([]byte, revBytesLen, markedRevBytesLen)
	binary.BigEndian.PutUint64(b, uint64(r.main))
	b[8] = '_'
	binary.BigEndian.PutUint64(b[9:], uint64(r.sub))
	if tombstone {
		b = append(b, tombstoneMark)
	}
	return b
}

func bytesToRev(b []byte) (r revision, tombstone bool, err error) {
	if (len(b) != revBytesLen && len(b) != markedRevBytesLen) || b[8] != '_' {
		return revision{}, false, fmt.Errorf("malformed revision key %x", b)
	}
	r.main = int64(binary.BigEndian.Uint64(b))
	r.sub = int64(binary.BigEndian.Uint64(b[9:]))
	if len(b) == markedRevBytesLen {
		if b[17] != tombstoneMark {
			return revision{}, false, fmt.Errorf("malformed revision key %x", b)
		}
		tombstone = true
	}
	return r, tombstone, nil
}

// mainRevStart is the first key bucket key of main revision rev.
func mainRevStart(rev int64) []byte { return revToBytes(revision{main: rev}, false) }
