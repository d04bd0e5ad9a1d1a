package backend

import (
	"bytes"
	"slices"

	"github.com/google/btree"
)

// entry is one buffered write: a value, or a delete marker that hides the
// key in bbolt until the buffer is committed.
type entry struct {
	key     []byte
	value   []byte
	deleted bool
}

func lessEntry(a, b entry) bool { return bytes.Compare(a.key, b.key) < 0 }

type tree = btree.BTreeG[entry]

func newTree() *tree { return btree.NewG(32, lessEntry) }

// buffer holds the writes of one batch, per bucket. The writer mutates the
// pending buffer; once swapped to "flushing" a buffer is never mutated again.
type buffer struct {
	buckets map[Bucket]*tree
	ops     int
}

func newBuffer() *buffer { return &buffer{buckets: make(map[Bucket]*tree)} }

func (b *buffer) empty() bool { return b.ops == 0 }

func (b *buffer) set(bucket Bucket, e entry) {
	t := b.buckets[bucket]
	if t == nil {
		t = newTree()
		b.buckets[bucket] = t
	}
	t.ReplaceOrInsert(e)
	b.ops++
}

// clone returns an O(buckets) copy-on-write snapshot of b. Must be called
// with the lock that serialises writes to b held.
func (b *buffer) clone() map[Bucket]*tree {
	out := make(map[Bucket]*tree, len(b.buckets))
	for name, t := range b.buckets {
		out[name] = t.Clone()
	}
	return out
}

// sortedBuckets returns the bucket names of b in a fixed order.
func (b *buffer) sortedBuckets() []Bucket {
	names := make([]Bucket, 0, len(b.buckets))
	for name := range b.buckets {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// treeCursor walks a btree in key order without a goroutine: every step
// is a fresh O(log n) descent starting after the last key returned.
type treeCursor struct {
	t     *tree
	end   []byte // exclusive; nil = unbounded
	cur   entry
	valid bool
}

func newTreeCursor(t *tree, start, end []byte) *treeCursor {
	c := &treeCursor{t: t, end: end}
	c.seek(start, true)
	return c
}

func (c *treeCursor) seek(pivot []byte, inclusive bool) {
	c.valid = false
	if c.t == nil {
		return
	}
	c.t.AscendGreaterOrEqual(entry{key: pivot}, func(e entry) bool {
		if !inclusive && bytes.Equal(e.key, pivot) {
			return true
		}
		if c.end != nil && bytes.Compare(e.key, c.end) >= 0 {
			return false
		}
		c.cur, c.valid = e, true
		return false
	})
}

func (c *treeCursor) next() { c.seek(c.cur.key, false) }
