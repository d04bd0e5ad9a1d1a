package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// StateMachine is what a Node replicates into. raftnode calls Apply,
// Snapshot and Restore from one goroutine (raft's FSM goroutine), never
// concurrently with each other; AppliedIndex may be called from any
// goroutine. Everything Apply does must be deterministic: the same entries
// must produce the same state and results on every member.
type StateMachine interface {
	// Apply applies committed entries in log order and returns, per entry,
	// one result per payload (results[i][j] answers entries[i].Payloads[j]).
	// An entry with no payloads stands for one of raft's own entries (a
	// membership change): record its index and return a nil result slice.
	// Entries at or below AppliedIndex() are never passed: after a restart
	// raft replays from its last snapshot and raftnode skips what the state
	// machine already persisted.
	Apply(entries []Entry) [][][]byte
	// AppliedIndex is the index of the last entry Apply has taken in (it
	// need not be durable yet, but after a restart it must not claim more
	// than was made durable).
	AppliedIndex() uint64
	// Snapshot captures the state at AppliedIndex(): it must make that state
	// durable first (raft never replays entries below a snapshot). The
	// returned Snapshot is streamed later, concurrently with further Apply
	// calls, and then released.
	Snapshot() (Snapshot, error)
	// Restore replaces the whole state with a stream written by
	// Snapshot.WriteTo (a follower installing the leader's snapshot). After
	// it returns, AppliedIndex() must be the index the snapshot was taken at.
	Restore(r io.Reader) error
}

// Snapshot is a point-in-time state captured by StateMachine.Snapshot.
type Snapshot interface {
	// WriteTo streams the state; it may run concurrently with Apply.
	WriteTo(w io.Writer) (int64, error)
	// Release frees the snapshot; called exactly once, after WriteTo or
	// instead of it.
	Release()
}

// Entry is one committed raft log entry as the state machine sees it.
type Entry struct {
	Index, Term uint64
	// Payloads are the proposals packed into this entry, in the order they
	// were packed; empty for raft's own entries.
	Payloads [][]byte
}

// packedFormatV1 tags a log entry holding packed payloads. A new encoding
// gets a new tag; an old binary then refuses the entry rather than
// misreading it.
const packedFormatV1 = 1

// packPayloads encodes payloads as one log entry: the format tag, the
// payload count, then each payload's length and bytes (uvarints).
func packPayloads(payloads [][]byte) []byte {
	size := 1 + binary.MaxVarintLen64
	for _, p := range payloads {
		size += binary.MaxVarintLen64 + len(p)
	}
	buf := make([]byte, 0, size)
	buf = append(buf, packedFormatV1)
	return appendList(buf, payloads)
}

// unpackPayloads decodes packPayloads' output. The payloads alias data.
func unpackPayloads(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("empty entry")
	}
	if data[0] != packedFormatV1 {
		return nil, fmt.Errorf("unknown entry format %d", data[0])
	}
	list, rest, err := readList(data[1:])
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(rest))
	}
	return list, nil
}

// appendList appends a count and length-prefixed items to buf.
func appendList(buf []byte, items [][]byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(items)))
	for _, it := range items {
		buf = binary.AppendUvarint(buf, uint64(len(it)))
		buf = append(buf, it...)
	}
	return buf
}

// readList reads what appendList wrote and returns the bytes after it. The
// items alias data.
func readList(data []byte) (items [][]byte, rest []byte, err error) {
	n, k := binary.Uvarint(data)
	if k <= 0 {
		return nil, nil, errors.New("bad item count")
	}
	data = data[k:]
	// Every item takes at least one byte, so a count beyond the remaining
	// length is corrupt (and must not drive an allocation).
	if n > uint64(len(data)) {
		return nil, nil, fmt.Errorf("item count %d exceeds %d remaining bytes", n, len(data))
	}
	items = make([][]byte, n)
	for i := range items {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return nil, nil, fmt.Errorf("item %d: bad length", i)
		}
		data = data[k:]
		items[i] = data[:l:l]
		data = data[l:]
	}
	return items, data, nil
}
