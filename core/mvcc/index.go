package mvcc

import (
	"bytes"
	"slices"

	"github.com/google/btree"
)

// generation is one life of a key: from its creating put to its tombstone
// (the last revision of every generation but the newest is a tombstone).
type generation struct {
	ver     int64 // version of the key at the last revision in revs
	created int64 // main revision that created this generation
	revs    []revision
}

// keyIndex lists every stored revision of one user key, by generation.
//
// keyIndex values are immutable once published: the writer derives a new
// value for every change and replaces it in the tree, so readers holding
// an older clone of the tree never see a change. Derived values may share
// the backing array of a revs slice; the writer only ever appends past
// the length of every older value, which readers never read.
type keyIndex struct {
	key         []byte
	modified    revision     // last revision written (put or tombstone)
	generations []generation // oldest first; the newest may be empty
	lease       int64        // lease of the live key (0: none or deleted)
}

type indexTree = btree.BTreeG[*keyIndex]

func newIndexTree() *indexTree {
	return btree.NewG(32, func(a, b *keyIndex) bool { return bytes.Compare(a.key, b.key) < 0 })
}

func (ki *keyIndex) clone() *keyIndex {
	c := *ki
	c.generations = make([]generation, len(ki.generations), len(ki.generations)+1)
	copy(c.generations, ki.generations)
	return &c
}

// isEmpty reports whether ki holds no revision at all.
func (ki *keyIndex) isEmpty() bool {
	return len(ki.generations) == 0 || (len(ki.generations) == 1 && len(ki.generations[0].revs) == 0)
}

// alive reports whether the key currently exists (its newest generation
// has revisions).
func (ki *keyIndex) alive() bool {
	return len(ki.generations) > 0 && len(ki.generations[len(ki.generations)-1].revs) > 0
}

// withPut returns ki with a put at rev (ver is the new version, or 0 to
// count on from the generation).
func (ki *keyIndex) withPut(rev revision, createdMain, ver int64, lease int64) *keyIndex {
	c := ki.clone()
	if len(c.generations) == 0 {
		c.generations = append(c.generations, generation{})
	}
	g := &c.generations[len(c.generations)-1]
	if len(g.revs) == 0 {
		g.created = createdMain
		g.ver = 0
	}
	g.revs = append(g.revs, rev)
	if ver > 0 {
		g.ver = ver
	} else {
		g.ver++
	}
	c.modified = rev
	c.lease = lease
	return c
}

// withTombstone returns ki with a tombstone at rev, which ends the
// current generation. A tombstone on a key with no live generation (only
// possible when rebuilding from a partially compacted file) gets a
// generation of its own so compaction can still find and remove it.
func (ki *keyIndex) withTombstone(rev revision) *keyIndex {
	c := ki.clone()
	if len(c.generations) == 0 {
		c.generations = append(c.generations, generation{})
	}
	g := &c.generations[len(c.generations)-1]
	g.revs = append(g.revs, rev)
	g.ver++
	c.generations = append(c.generations, generation{})
	c.modified = rev
	c.lease = 0
	return c
}

// get returns the revision of the key visible at atRev, with its create
// revision and version; ok is false if the key does not exist at atRev.
func (ki *keyIndex) get(atRev int64) (mod revision, created, ver int64, ok bool) {
	g := ki.findGeneration(atRev)
	if g == nil {
		return revision{}, 0, 0, false
	}
	for n := len(g.revs) - 1; n >= 0; n-- {
		if g.revs[n].main <= atRev {
			return g.revs[n], g.created, g.ver - int64(len(g.revs)-n-1), true
		}
	}
	return revision{}, 0, 0, false
}

// findGeneration returns the generation in which the key is alive at rev,
// or nil if it is not alive then.
func (ki *keyIndex) findGeneration(rev int64) *generation {
	last := len(ki.generations) - 1
	for i := last; i >= 0; i-- {
		g := &ki.generations[i]
		if len(g.revs) == 0 {
			continue
		}
		if i != last && g.revs[len(g.revs)-1].main <= rev {
			return nil // the generation's tombstone is at or before rev
		}
		if g.revs[0].main <= rev {
			return g
		}
	}
	return nil
}

// droppedRev is a key bucket row that compaction removes.
type droppedRev struct {
	rev       revision
	tombstone bool
}

// compacted returns ki compacted at atRev (nil if nothing is left) and the
// rows that compaction removes. Kept: for the generation alive at atRev
// (or the first one created after it), the newest revision <= atRev — a
// tombstone exactly at atRev included, as etcd >= 3.5.16 does; every
// older revision and every generation whose tombstone is < atRev go.
func (ki *keyIndex) compacted(atRev int64) (*keyIndex, []droppedRev) {
	if ki.isEmpty() {
		return nil, nil
	}
	var dropped []droppedRev
	genIdx := 0
	for genIdx < len(ki.generations)-1 {
		g := ki.generations[genIdx]
		if len(g.revs) > 0 && g.revs[len(g.revs)-1].main >= atRev {
			break
		}
		for i, r := range g.revs {
			dropped = append(dropped, droppedRev{rev: r, tombstone: i == len(g.revs)-1})
		}
		genIdx++
	}
	g := ki.generations[genIdx]
	keepFrom := -1
	for n := len(g.revs) - 1; n >= 0; n-- {
		if g.revs[n].main <= atRev {
			keepFrom = n
			break
		}
	}
	isLast := genIdx == len(ki.generations)-1
	for i := 0; i < keepFrom; i++ {
		dropped = append(dropped, droppedRev{rev: g.revs[i], tombstone: !isLast && i == len(g.revs)-1})
	}
	if len(dropped) == 0 {
		return ki, nil
	}
	c := *ki
	c.generations = slices.Clone(ki.generations[genIdx:])
	if keepFrom > 0 {
		c.generations[0].revs = c.generations[0].revs[keepFrom:]
	}
	if c.isEmpty() {
		return nil, dropped
	}
	return &c, dropped
}

// Tree helpers. They work on any tree: the writer's master or a reader's
// published clone.

func lookup(t *indexTree, key []byte) *keyIndex {
	ki, _ := t.Get(&keyIndex{key: key})
	return ki
}

// visit calls fn for every keyIndex in [key, end) with the store's range
// conventions: end == nil is the single key, len(end) == 0 is every key
// >= key.
func visit(t *indexTree, key, end []byte, fn func(ki *keyIndex) bool) {
	if end == nil {
		if ki := lookup(t, key); ki != nil {
			fn(ki)
		}
		return
	}
	if len(end) == 0 {
		t.AscendGreaterOrEqual(&keyIndex{key: key}, fn)
		return
	}
	if bytes.Compare(key, end) >= 0 {
		return
	}
	t.AscendRange(&keyIndex{key: key}, &keyIndex{key: end}, fn)
}

// normalizeEnd applies etcd's range_end rules: empty = single key,
// "\x00" = every key >= key.
func normalizeEnd(rangeEnd []byte) []byte {
	switch {
	case len(rangeEnd) == 0:
		return nil
	case len(rangeEnd) == 1 && rangeEnd[0] == 0:
		return []byte{}
	}
	return rangeEnd
}

// inRange reports whether k is in [key, end) under the same conventions.
func inRange(k, key, end []byte) bool {
	if end == nil {
		return bytes.Equal(k, key)
	}
	if bytes.Compare(k, key) < 0 {
		return false
	}
	return len(end) == 0 || bytes.Compare(k, end) < 0
}
