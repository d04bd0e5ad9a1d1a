package backend

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Snapshot is a consistent, committed copy of the bbolt file that can be
// streamed while the Backend keeps working. Close it when done: it pins
// the file (Defrag and Close wait for it).
type Snapshot struct {
	b  *Backend
	tx *bolt.Tx
}

// BeginSnapshot commits every buffered write and pins the resulting file
// state. Call it from the applier between entries (the snapshot then holds
// exactly the state applied so far, consistent index included); stream it
// later from any goroutine with WriteTo.
func (b *Backend) BeginSnapshot() (*Snapshot, error) {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()
	for {
		// Commit requires commitMu free; do its work inline instead.
		b.pendingMu.Lock()
		if b.flushing == nil {
			if b.pending.empty() {
				b.pendingMu.Unlock()
				break
			}
			b.swapLocked()
		}
		buf := b.flushing
		b.pendingMu.Unlock()
		if err := b.commitBuffer(buf); err != nil {
			return nil, err
		}
		b.pendingMu.Lock()
		b.flushing = nil
		b.pendingMu.Unlock()
	}
	b.dbMu.RLock()
	tx, err := b.db.Begin(false)
	if err != nil {
		b.dbMu.RUnlock()
		return nil, fmt.Errorf("begin snapshot tx on %s: %w", b.cfg.Path, err)
	}
	return &Snapshot{b: b, tx: tx}, nil
}

// Size is the number of bytes WriteTo writes.
func (s *Snapshot) Size() int64 { return s.tx.Size() }

// WriteTo streams the file image to w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := s.tx.WriteTo(w)
	if err != nil {
		return n, fmt.Errorf("stream snapshot of %s: %w", s.b.cfg.Path, err)
	}
	return n, nil
}

// Close releases the snapshot.
func (s *Snapshot) Close() error {
	if s.tx == nil {
		return nil
	}
	err := s.tx.Rollback()
	s.tx = nil
	s.b.dbMu.RUnlock()
	return err
}

// Snapshot commits, then streams a consistent copy of the file to w.
func (b *Backend) Snapshot(w io.Writer) (int64, error) {
	s, err := b.BeginSnapshot()
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.WriteTo(w)
}

// WriteSnapshotFile writes the stream r (as produced by Snapshot) to path
// safely: into a temporary file beside it, fsynced, checked to open as a
// bbolt file, then renamed over path and the directory fsynced. The caller
// closes its Backend on path first and opens a new one afterwards.
func WriteSnapshotFile(path string, r io.Reader) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".snap-*")
	if err != nil {
		return 0, fmt.Errorf("create temp file for snapshot in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if errClose := f.Close(); err == nil {
		err = errClose
	}
	if err != nil {
		return n, fmt.Errorf("write snapshot to %s: %w", tmp, err)
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return n, fmt.Errorf("snapshot %s is not a valid bbolt file: %w", tmp, err)
	}
	if err := db.Close(); err != nil {
		return n, fmt.Errorf("close checked snapshot %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return n, fmt.Errorf("rename snapshot %s to %s: %w", tmp, path, err)
	}
	if err := fsyncDir(dir); err != nil {
		return n, fmt.Errorf("fsync %s: %w", dir, err)
	}
	return n, nil
}

// Size returns the size of the bbolt file in bytes (as etcd's db size).
func (b *Backend) Size() (int64, error) {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	var size int64
	err := b.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	return size, err
}

// SizeInUse returns the file size minus its free pages: what Defrag would
// shrink the file to, roughly.
func (b *Backend) SizeInUse() (int64, error) {
	b.dbMu.RLock()
	defer b.dbMu.RUnlock()
	var size int64
	err := b.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	})
	if err != nil {
		return 0, err
	}
	st := b.db.Stats()
	free := int64(st.FreePageN+st.PendingPageN) * int64(b.db.Info().PageSize)
	return size - free, nil
}

// Hash returns a CRC-32C (Castagnoli) over every bucket's name and every
// key and value in it, buckets in name order and keys in key order, as
// seen by a consistent ReadView (buffered writes included). Equal on two
// nodes that applied the same writes and agree on the consistent index.
func (b *Backend) Hash() (uint32, error) {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	err := b.Read(func(v *ReadView) error {
		for _, name := range v.buckets() {
			h.Write([]byte(name))
			for k, val := range v.Range(name, nil, nil, 0) {
				h.Write(k)
				h.Write(val)
			}
		}
		return nil
	})
	return h.Sum32(), err
}

// buckets returns the names of every bucket in v (committed or buffered),
// sorted.
func (v *ReadView) buckets() []Bucket {
	var names []Bucket
	_ = v.tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		names = append(names, Bucket(name))
		return nil
	})
	for name := range v.pending {
		names = append(names, name)
	}
	if v.flushing != nil {
		for name := range v.flushing.buckets {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Defrag rewrites the bbolt file compactly. Writes keep being buffered
// and reads keep being served while the committed data is copied into a
// new file; commits wait until Defrag returns. Readers pause only for the
// final swap: Defrag waits for open views and snapshots to close, then
// closes, renames and reopens the file (milliseconds). ctx cancels the copy.
func (b *Backend) Defrag(ctx context.Context) error {
	b.commitMu.Lock()
	defer b.commitMu.Unlock()

	tmp := b.cfg.Path + ".defrag"
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return fmt.Errorf("defrag: open %s: %w", tmp, err)
	}
	b.dbMu.RLock()
	err = copyBolt(ctx, dst, b.db)
	b.dbMu.RUnlock()
	if err == nil {
		err = dst.Sync()
	}
	if errClose := dst.Close(); err == nil {
		err = errClose
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("defrag %s: %w", b.cfg.Path, err)
	}

	b.dbMu.Lock()
	defer b.dbMu.Unlock()
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("defrag: close %s: %w", b.cfg.Path, err)
	}
	errRename := os.Rename(tmp, b.cfg.Path)
	if errRename == nil {
		errRename = fsyncDir(filepath.Dir(b.cfg.Path))
	}
	// Reopen whatever is at Path now: the new file, or the old one if
	// the rename failed.
	db, err := openBolt(b.cfg)
	if err != nil {
		return errors.Join(errRename, fmt.Errorf("defrag: reopen: %w", err))
	}
	b.db = db
	if errRename != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("defrag: replace %s: %w", b.cfg.Path, errRename)
	}
	return nil
}

// copyBolt copies every top-level bucket of src into dst, committing every
// 10,000 keys and checking ctx between commits.
func copyBolt(ctx context.Context, dst, src *bolt.DB) error {
	return src.View(func(stx *bolt.Tx) error {
		dtx, err := dst.Begin(true)
		if err != nil {
			return err
		}
		defer func() { _ = dtx.Rollback() }()
		n := 0
		err = stx.ForEach(func(name []byte, sb *bolt.Bucket) error {
			if _, err := dtx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
			return sb.ForEach(func(k, v []byte) error {
				if v == nil {
					return fmt.Errorf("bucket %q: nested bucket %q is not supported", name, k)
				}
				db := dtx.Bucket(name)
				db.FillPercent = 1.0
				if err := db.Put(k, v); err != nil {
					return err
				}
				n++
				if n%10_000 != 0 {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := dtx.Commit(); err != nil {
					return err
				}
				dtx, err = dst.Begin(true)
				return err
			})
		})
		if err != nil {
			return err
		}
		return dtx.Commit()
	})
}
