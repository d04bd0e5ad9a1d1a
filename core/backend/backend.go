package backend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names a top-level bbolt bucket. Packages declare the buckets they
// own as package-level constants (mvcc: "key"); the bucket is created in the
// file on the first commit that writes to it.
type Bucket string

// MetaBucket holds the consistent index and other small per-node facts.
// Packages may store their own keys in it under distinct names.
const MetaBucket Bucket = "meta"

// Keys of the consistent index in MetaBucket (etcd's names).
var (
	consistentIndexKey = []byte("consistent_index")
	termKey            = []byte("term")
)

// Errors callers may branch on.
var (
	// ErrClosed is returned by operations on a closed Backend.
	ErrClosed = errors.New("backend: closed")
)

// Backend is one bbolt file with a write buffer in front of it. See the
// package documentation for the threading and durability rules.
type Backend struct {
	cfg Config
	log *slog.Logger

	// Lock order: commitMu → dbMu → pendingMu.
	//
	// commitMu serialises everything that writes the bbolt file: the
	// flusher, Commit, Defrag, Close.
	commitMu sync.Mutex
	// dbMu guards db, which Defrag replaces. Read views and snapshots hold
	// the read lock for their whole lifetime, so a goroutine must never
	// open a second view while it holds one.
	dbMu sync.RWMutex
	db   *bolt.DB
	// pendingMu guards the fields below. It is only ever held for O(1) or
	// O(log n) work, never across bbolt calls.
	pendingMu sync.Mutex
	pending   *buffer // writes not yet handed to the flusher
	flushing  *buffer // writes being committed; immutable; nil when idle
	swaps     uint64  // number of pending→flushing swaps so far
	unsealed  int     // Put/Delete calls since the last SetConsistentIndex
	sealing   bool    // SetConsistentIndex has been called at least once
	wantFlush bool    // the flusher is waiting for the next seal
	ciIndex   uint64
	ciTerm    uint64
	closed    bool

	kick chan struct{} // wakes the flusher (buffer full or sealed batch ready)
	stop chan struct{}
	wg   sync.WaitGroup
}

// Open opens (creating if needed) the bbolt file at cfg.Path and starts the
// background flusher. A file written by WriteSnapshotFile opens like any other.
func Open(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := openBolt(cfg)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:     cfg,
		log:     cfg.Logger,
		db:      db,
		pending: newBuffer(),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte(MetaBucket))
		if meta == nil {
			return nil
		}
		b.ciIndex = decodeUint64(meta.Get(consistentIndexKey))
		b.ciTerm = decodeUint64(meta.Get(termKey))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read consistent index from %s: %w", cfg.Path, err)
	}
	b.wg.Go(b.runFlusher)
	return b, nil
}

func openBolt(cfg Config) (*bolt.DB, error) {
	db, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:         10 * time.Second,
		InitialMmapSize: cfg.InitialMmapSize,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
	})
	if err != nil {
		return nil, fmt.Errorf("open bolt %s: %w", cfg.Path, err)
	}
	return db, nil
}

// Close commits every buffered write, stops the flusher and closes the file.
func (b *Backend) Close() error {
	if !b.stopFlusher() {
		return ErrClosed
	}
	errCommit := b.Commit()
	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	if err := b.db.Close(); err != nil {
		return errors.Join(errCommit, fmt.Errorf("close bolt %s: %w", b.cfg.Path, err))
	}
	return errCommit
}

// stopFlusher marks b closed and waits for the flusher to exit. It returns
// false if b was already closed.
func (b *Backend) stopFlusher() bool {
	b.pendingMu.Lock()
	already := b.closed
	b.closed = true
	b.pendingMu.Unlock()
	if already {
		return false
	}
	close(b.stop)
	b.wg.Wait()
	return true
}

// Put buffers key=value in bucket. It is part of the current apply: once
// SetConsistentIndex has been called, it is committed only together with
// the next SetConsistentIndex. key and value are copied.
func (b *Backend) Put(bucket Bucket, key, value []byte) {
	b.write(bucket, entry{key: clone(key), value: clone(value)}, true)
}

// Delete buffers the removal of key from bucket (see Put).
func (b *Backend) Delete(bucket Bucket, key []byte) {
	b.write(bucket, entry{key: clone(key), deleted: true}, true)
}

// PutIdempotent buffers a write that may be committed at any moment, even
// between a Put and the SetConsistentIndex that covers it, because redoing
// it after a crash is harmless (e.g. compaction progress).
func (b *Backend) PutIdempotent(bucket Bucket, key, value []byte) {
	b.write(bucket, entry{key: clone(key), value: clone(value)}, false)
}

// DeleteIdempotent buffers a removal that may be committed at any moment
// (see PutIdempotent); compaction uses it.
func (b *Backend) DeleteIdempotent(bucket Bucket, key []byte) {
	b.write(bucket, entry{key: clone(key), deleted: true}, false)
}

func (b *Backend) write(bucket Bucket, e entry, sealed bool) {
	b.pendingMu.Lock()
	b.pending.set(bucket, e)
	if sealed {
		b.unsealed++
	}
	full := b.pending.ops >= b.cfg.BatchLimit
	b.pendingMu.Unlock()
	if full {
		b.wake()
	}
}

// SetConsistentIndex records the raft index and term of the last applied
// entry. It is written to MetaBucket in the same bbolt transaction as every
// write buffered before it, and it marks a point where the buffer may be
// committed: once it has been called, writes are committed only up to the
// latest call, so data and index never disagree on disk.
func (b *Backend) SetConsistentIndex(index, term uint64) {
	b.pendingMu.Lock()
	b.pending.set(MetaBucket, entry{key: consistentIndexKey, value: encodeUint64(index)})
	b.pending.set(MetaBucket, entry{key: termKey, value: encodeUint64(term)})
	b.ciIndex, b.ciTerm = index, term
	b.sealing = true
	b.unsealed = 0
	swapped := false
	if (b.wantFlush || b.pending.ops >= b.cfg.BatchLimit) && b.flushing == nil {
		b.swapLocked()
		swapped = true
	}
	b.pendingMu.Unlock()
	if swapped {
		b.wake()
	}
}

// ConsistentIndex returns the values of the last SetConsistentIndex call,
// or after Open the values durably committed in the file (0, 0 if none).
func (b *Backend) ConsistentIndex() (index, term uint64) {
	b.pendingMu.Lock()
	defer b.pendingMu.Unlock()
	return b.ciIndex, b.ciTerm
}

// swapLocked hands the pending buffer to the flusher. Requires pendingMu
// held and flushing == nil.
func (b *Backend) swapLocked() {
	b.flushing = b.pending
	b.pending = newBuffer()
	b.swaps++
	b.wantFlush = false
}

func (b *Backend) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// runFlusher is the background goroutine owned by b; stopFlusher stops it.
// A commit that keeps failing (a full disk) is retried on every tick but
// logged once per failureLogInterval, and its end is logged too.
func (b *Backend) runFlusher() {
	ticker := time.NewTicker(b.cfg.BatchInterval)
	defer ticker.Stop()
	failures := 0 // consecutive failed commits
	var logged time.Time
	for {
		select {
		case <-b.stop:
			return
		case <-ticker.C:
		case <-b.kick:
		}
		err := b.flush(false)
		switch {
		case err != nil:
			failures++
			if failures == 1 || time.Since(logged) >= failureLogInterval {
				b.log.Error("backend: commit failed; writes stay buffered and will be retried",
					"path", b.cfg.Path, "failed-attempts", failures, "err", err)
				logged = time.Now()
			}
		case failures > 0:
			b.log.Info("backend: commit succeeded again", "path", b.cfg.Path, "failed-attempts", failures)
			failures = 0
		}
	}
}

// failureLogInterval spaces the log lines of a commit that keeps failing.
const failureLogInterval = 10 * time.Second

// Commit commits every buffered write to bbolt now and returns when it is
// durable. It ignores consistent-index boundaries: call it from the applier
// between entries (raft snapshot, shutdown), or when no applier runs.
func (b *Backend) Commit() error {
	for {
		done, err := b.flushStep(true)
		if err != nil || done {
			return err
		}
	}
}

// flush commits what is ready: a sealed batch handed over by
// SetConsistentIndex, or the pending buffer if it may be committed now.
func (b *Backend) flush(force bool) error {
	_, err := b.flushStep(force)
	return err
}

// flushStep commits one buffer. It reports done when nothing was left to
// commit afterwards (only meaningful with force).
func (b *Backend) flushStep(force bool) (done bool, err error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()

	b.pendingMu.Lock()
	if b.flushing == nil {
		switch {
		case b.pending.empty():
			b.pendingMu.Unlock()
			return true, nil
		case !force && b.sealing && b.unsealed > 0:
			// The applier is in the middle of an entry; SetConsistentIndex
			// will swap and wake us.
			b.wantFlush = true
			b.pendingMu.Unlock()
			return false, nil
		}
		b.swapLocked()
	}
	buf := b.flushing
	b.pendingMu.Unlock()

	if err := b.commitBuffer(buf); err != nil {
		return false, err
	}

	b.pendingMu.Lock()
	b.flushing = nil
	done = b.pending.empty()
	b.pendingMu.Unlock()
	return done, nil
}

// commitBuffer writes buf to bbolt in one transaction. Requires commitMu.
func (b *Backend) commitBuffer(buf *buffer) error {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	start := time.Now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range buf.sortedBuckets() {
			bk, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
			bk.FillPercent = 0.9 // keys are mostly appended in order
			buf.buckets[name].Ascend(func(e entry) bool {
				if e.deleted {
					err = bk.Delete(e.key)
				} else {
					err = bk.Put(e.key, e.value)
				}
				return err == nil
			})
			if err != nil {
				return fmt.Errorf("write bucket %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d writes to %s: %w", buf.ops, b.cfg.Path, err)
	}
	b.log.Debug("backend: committed", "writes", buf.ops, "took", time.Since(start))
	return nil
}

// abandon simulates a crash: it stops the flusher and closes the file
// without committing what is buffered. Used by tests.
func (b *Backend) abandon() error {
	if !b.stopFlusher() {
		return ErrClosed
	}
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	return b.db.Close()
}

func clone(p []byte) []byte {
	if p == nil {
		return []byte{}
	}
	out := make([]byte, len(p))
	copy(out, p)
	return out
}

func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

func decodeUint64(p []byte) uint64 {
	if len(p) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Path returns the file the Backend was opened on.
func (b *Backend) Path() string { return b.cfg.Path }

// fsyncDir makes a rename in dir durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
