package raftnode

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/hashicorp/raft"
)

// appliedTracker is the index the state machine has applied (not merely
// been sent, which is what raft.AppliedIndex reports), with waiters.
type appliedTracker struct {
	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed and replaced whenever index grows
}

func newAppliedTracker(index uint64) *appliedTracker {
	return &appliedTracker{index: index, changed: make(chan struct{})}
}

// Index returns the applied index.
func (t *appliedTracker) Index() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.index
}

// advance raises the applied index to index and wakes waiters.
func (t *appliedTracker) advance(index uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if index <= t.index {
		return
	}
	t.index = index
	close(t.changed)
	t.changed = make(chan struct{})
}

// wait blocks until the applied index reaches index, ctx ends or stop
// closes.
func (t *appliedTracker) wait(ctx context.Context, index uint64, stop <-chan struct{}) error {
	for {
		t.mu.Lock()
		cur, changed := t.index, t.changed
		t.mu.Unlock()
		if cur >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctxError(ctx)
		case <-stop:
			return ErrStopped
		}
	}
}

// fsm adapts a StateMachine to raft.BatchingFSM. All methods run on raft's
// FSM goroutine (or, for restoreStream at Open, before raft starts), so
// smApplied needs no lock.
type fsm struct {
	sm      StateMachine
	applied *appliedTracker
	logger  *slog.Logger
	// smApplied is the state machine's applied index as last seen here;
	// entries at or below it are skipped.
	smApplied uint64
}

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply implements raft.FSM for the unbatched path raft never takes with a
// BatchingFSM; kept so that the adapter is a complete FSM.
func (f *fsm) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch hands committed command and configuration entries to the state
// machine in one call. The response for a command entry is its [][]byte
// results, which resolves the proposer's future.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	if len(logs) == 0 {
		return resp
	}
	entries := make([]Entry, 0, len(logs))
	positions := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Index <= f.smApplied {
			continue // replayed after a restart: already in the state machine
		}
		e := Entry{Index: l.Index, Term: l.Term}
		if l.Type == raft.LogCommand {
			payloads, err := unpackPayloads(l.Data)
			if err != nil {
				// The log is replicated and checksummed: an entry we cannot
				// read was written by a newer binary or is corrupt. Applying
				// anything after it would diverge from the other members.
				panic(fmt.Sprintf("raftnode: log entry %d: %v", l.Index, err))
			}
			e.Payloads = payloads
		}
		entries = append(entries, e)
		positions = append(positions, i)
	}
	if len(entries) > 0 {
		results := f.sm.Apply(entries)
		if len(results) != len(entries) {
			panic(fmt.Sprintf("raftnode: StateMachine.Apply returned %d results for %d entries", len(results), len(entries)))
		}
		for k, i := range positions {
			if len(results[k]) != len(entries[k].Payloads) {
				panic(fmt.Sprintf("raftnode: StateMachine.Apply returned %d results for %d payloads of entry %d",
					len(results[k]), len(entries[k].Payloads), entries[k].Index))
			}
			resp[i] = results[k]
		}
		f.smApplied = entries[len(entries)-1].Index
	}
	f.applied.advance(logs[len(logs)-1].Index)
	return resp
}

// snapshotMagic starts every snapshot stream raftnode writes; the header
// also carries the state machine's applied index at capture time, so a
// restore can check the state machine's contract.
var snapshotMagic = [8]byte{'c', 'o', 'n', 'c', 'r', 'a', 'f', '1'}

// Snapshot implements raft.FSM.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	index := f.sm.AppliedIndex()
	s, err := f.sm.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("state machine snapshot at %d: %w", index, err)
	}
	return &fsmSnapshot{snap: s, index: index}, nil
}

// Restore implements raft.FSM: a follower installs the leader's snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	return f.restoreStream(rc)
}

// restoreStream reads a header and hands the rest to StateMachine.Restore.
func (f *fsm) restoreStream(r io.Reader) error {
	index, err := readSnapshotHeader(r)
	if err != nil {
		return err
	}
	return f.restoreAt(index, r)
}

// readSnapshotHeader reads the header Persist wrote and returns the state
// machine's applied index at capture time.
func readSnapshotHeader(r io.Reader) (uint64, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("read snapshot header: %w", err)
	}
	if !bytes.Equal(hdr[:8], snapshotMagic[:]) {
		return 0, fmt.Errorf("snapshot header %q is not raftnode's", hdr[:8])
	}
	return binary.BigEndian.Uint64(hdr[8:]), nil
}

// restoreAt restores the state machine from r, a snapshot taken at index
// whose header was already read.
func (f *fsm) restoreAt(index uint64, r io.Reader) error {
	if err := f.sm.Restore(r); err != nil {
		return fmt.Errorf("state machine restore at %d: %w", index, err)
	}
	if got := f.sm.AppliedIndex(); got != index {
		return fmt.Errorf("state machine restored a snapshot taken at %d but reports applied index %d", index, got)
	}
	f.smApplied = index
	f.applied.advance(index)
	f.logger.Info("restored state machine from snapshot", "index", index)
	return nil
}

// fsmSnapshot streams a StateMachine Snapshot into raft's snapshot sink.
type fsmSnapshot struct {
	snap  Snapshot
	index uint64
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	var hdr [16]byte
	copy(hdr[:8], snapshotMagic[:])
	binary.BigEndian.PutUint64(hdr[8:], s.index)
	if _, err := sink.Write(hdr[:]); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("write snapshot header: %w", err)
	}
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("stream snapshot at %d: %w", s.index, err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("close snapshot at %d: %w", s.index, err)
	}
	return nil
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() { s.snap.Release() }
