package backend

import (
	"bytes"
	"errors"
	"fmt"
	"iter"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ReadView is a consistent view of the Backend: bbolt as of one read
// transaction with the buffered writes of that moment merged over it
// (buffered deletes hide committed keys). Slices it returns are valid only
// until the view is closed; copy what you keep.
type ReadView struct {
	pending  map[Bucket]*tree // copy-on-write clones; never mutated
	flushing *buffer          // immutable; nil if none
	tx       *bolt.Tx
}

// Read runs fn with a consistent ReadView and releases it afterwards. Any
// goroutine may call Read, concurrently with writes and commits; it never
// blocks the writer. fn must not call Read, Get, Range or Snapshot on the
// same Backend (a nested view can deadlock against Defrag).
func (b *Backend) Read(fn func(v *ReadView) error) error {
	v, err := b.openView()
	if err != nil {
		return err
	}
	defer b.closeView(v)
	return fn(v)
}

func (b *Backend) openView() (*ReadView, error) {
	b.dbMu.RLock()
	for {
		b.pendingMu.Lock()
		v := &ReadView{pending: b.pending.clone(), flushing: b.flushing}
		swaps := b.swaps
		b.pendingMu.Unlock()

		tx, err := b.db.Begin(false)
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			b.dbMu.RUnlock()
			return nil, ErrClosed
		}
		if err != nil {
			b.dbMu.RUnlock()
			return nil, fmt.Errorf("begin read tx on %s: %w", b.cfg.Path, err)
		}
		// If a swap happened since the buffers were captured, bbolt may
		// already hold writes newer than the captured pending buffer, and
		// the view would mix two moments. Rare (once per commit): retry.
		b.pendingMu.Lock()
		same := b.swaps == swaps
		b.pendingMu.Unlock()
		if same {
			v.tx = tx
			return v, nil
		}
		_ = tx.Rollback()
	}
}

func (b *Backend) closeView(v *ReadView) {
	_ = v.tx.Rollback()
	b.dbMu.RUnlock()
}

// Get returns the value of key in bucket and whether it exists.
func (v *ReadView) Get(bucket Bucket, key []byte) ([]byte, bool) {
	if t := v.pending[bucket]; t != nil {
		if e, ok := t.Get(entry{key: key}); ok {
			return e.value, !e.deleted
		}
	}
	if v.flushing != nil {
		if t := v.flushing.buckets[bucket]; t != nil {
			if e, ok := t.Get(entry{key: key}); ok {
				return e.value, !e.deleted
			}
		}
	}
	if bk := v.tx.Bucket([]byte(bucket)); bk != nil {
		if val := bk.Get(key); val != nil {
			return val, true
		}
	}
	return nil, false
}

// Range yields the keys of bucket in [start, end) in ascending order with
// their values, at most limit of them (limit <= 0: no limit). A nil end
// means the end of the bucket.
func (v *ReadView) Range(bucket Bucket, start, end []byte, limit int) iter.Seq2[[]byte, []byte] {
	return func(yield func(k, val []byte) bool) {
		pc := newTreeCursor(v.pending[bucket], start, end)
		var fc *treeCursor
		if v.flushing != nil {
			fc = newTreeCursor(v.flushing.buckets[bucket], start, end)
		} else {
			fc = newTreeCursor(nil, start, end)
		}
		var bc boltCursor
		if bk := v.tx.Bucket([]byte(bucket)); bk != nil {
			bc.c = bk.Cursor()
			bc.end = end
			bc.k, bc.v = bc.c.Seek(start)
			bc.check()
		}
		n := 0
		for {
			// Pick the smallest key among the three sources; on a tie the
			// newer source (pending, then flushing) wins.
			var key []byte
			if pc.valid {
				key = pc.cur.key
			}
			if fc.valid && (key == nil || bytes.Compare(fc.cur.key, key) < 0) {
				key = fc.cur.key
			}
			if bc.k != nil && (key == nil || bytes.Compare(bc.k, key) < 0) {
				key = bc.k
			}
			if key == nil {
				return
			}
			var val []byte
			deleted, found := false, false
			if pc.valid && bytes.Equal(pc.cur.key, key) {
				val, deleted, found = pc.cur.value, pc.cur.deleted, true
				pc.next()
			}
			if fc.valid && bytes.Equal(fc.cur.key, key) {
				if !found {
					val, deleted, found = fc.cur.value, fc.cur.deleted, true
				}
				fc.next()
			}
			if bc.k != nil && bytes.Equal(bc.k, key) {
				if !found {
					val = bc.v
				}
				bc.k, bc.v = bc.c.Next()
				bc.check()
			}
			if deleted {
				continue
			}
			if !yield(key, val) {
				return
			}
			n++
			if limit > 0 && n >= limit {
				return
			}
		}
	}
}

type boltCursor struct {
	c    *bolt.Cursor
	end  []byte
	k, v []byte
}

func (c *boltCursor) check() {
	if c.k != nil && c.end != nil && bytes.Compare(c.k, c.end) >= 0 {
		c.k, c.v = nil, nil
	}
}

// Get returns a copy of the value of key in bucket and whether it exists.
func (b *Backend) Get(bucket Bucket, key []byte) (value []byte, ok bool, err error) {
	err = b.Read(func(v *ReadView) error {
		var val []byte
		if val, ok = v.Get(bucket, key); ok {
			value = clone(val)
		}
		return nil
	})
	return value, ok, err
}

// KV is a copied key-value pair returned by Backend.Range.
type KV struct {
	Key, Value []byte
}

// Range returns copies of up to limit pairs of bucket in [start, end)
// (see ReadView.Range).
func (b *Backend) Range(bucket Bucket, start, end []byte, limit int) ([]KV, error) {
	var out []KV
	err := b.Read(func(v *ReadView) error {
		for k, val := range v.Range(bucket, start, end, limit) {
			out = append(out, KV{Key: clone(k), Value: clone(val)})
		}
		return nil
	})
	return out, err
}
