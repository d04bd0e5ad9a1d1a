package watch

import "bytes"

// keyRange is a half-open key interval [start, end). unbounded means "every
// key >= start" (etcd's range_end "\x00"); end is then ignored.
type keyRange struct {
	start     []byte
	end       []byte
	unbounded bool
}

// contains reports whether key lies in the range.
func (r keyRange) contains(key []byte) bool {
	return bytes.Compare(r.start, key) <= 0 && (r.unbounded || bytes.Compare(key, r.end) < 0)
}

// compareRange orders ranges by start, then by end with unbounded last. It
// is the tree's key order; equal ranges share one node.
func compareRange(a, b keyRange) int {
	if c := bytes.Compare(a.start, b.start); c != 0 {
		return c
	}
	switch {
	case a.unbounded && b.unbounded:
		return 0
	case a.unbounded:
		return 1
	case b.unbounded:
		return -1
	}
	return bytes.Compare(a.end, b.end)
}

// upper is the upper bound of a range as used by the max-end augmentation.
type upper struct {
	end       []byte
	unbounded bool
}

func (u upper) above(key []byte) bool {
	return u.unbounded || bytes.Compare(key, u.end) < 0
}

func maxUpper(a, b upper) upper {
	switch {
	case a.unbounded:
		return a
	case b.unbounded:
		return b
	case bytes.Compare(a.end, b.end) >= 0:
		return a
	}
	return b
}

// rangeTree is an interval tree: an AVL tree ordered by compareRange, each
// node augmented with the largest upper bound in its subtree, so that a
// stabbing query ("which ranges contain this key?") visits only subtrees
// that can hold a match: O(log n + matches) for n distinct ranges. Watchers
// with the same range share one node, so ten thousand watchers on one prefix
// cost one node and one visit per event.
type rangeTree struct {
	root *rangeNode
	size int // distinct ranges
}

type rangeNode struct {
	r        keyRange
	watchers watcherSet
	left     *rangeNode
	right    *rangeNode
	height   int
	maxEnd   upper
}

func height(n *rangeNode) int {
	if n == nil {
		return 0
	}
	return n.height
}

// fix recomputes n's height and augmentation from its children.
func (n *rangeNode) fix() {
	n.height = 1 + max(height(n.left), height(n.right))
	m := upper{end: n.r.end, unbounded: n.r.unbounded}
	if n.left != nil {
		m = maxUpper(m, n.left.maxEnd)
	}
	if n.right != nil {
		m = maxUpper(m, n.right.maxEnd)
	}
	n.maxEnd = m
}

func rotateRight(n *rangeNode) *rangeNode {
	l := n.left
	n.left = l.right
	l.right = n
	n.fix()
	l.fix()
	return l
}

func rotateLeft(n *rangeNode) *rangeNode {
	r := n.right
	n.right = r.left
	r.left = n
	n.fix()
	r.fix()
	return r
}

func balance(n *rangeNode) *rangeNode {
	n.fix()
	switch bf := height(n.left) - height(n.right); {
	case bf > 1:
		if height(n.left.left) < height(n.left.right) {
			n.left = rotateLeft(n.left)
		}
		return rotateRight(n)
	case bf < -1:
		if height(n.right.right) < height(n.right.left) {
			n.right = rotateRight(n.right)
		}
		return rotateLeft(n)
	}
	return n
}

// add puts w into the set for range r, creating the node if needed.
func (t *rangeTree) add(r keyRange, w *watcher) {
	t.root = t.insert(t.root, r, w)
}

func (t *rangeTree) insert(n *rangeNode, r keyRange, w *watcher) *rangeNode {
	if n == nil {
		t.size++
		n = &rangeNode{r: r, watchers: watcherSet{w: {}}}
		n.fix()
		return n
	}
	switch c := compareRange(r, n.r); {
	case c < 0:
		n.left = t.insert(n.left, r, w)
	case c > 0:
		n.right = t.insert(n.right, r, w)
	default:
		n.watchers[w] = struct{}{}
		return n
	}
	return balance(n)
}

// remove takes w out of the set for range r and drops the node when its set
// becomes empty. It reports whether w was present.
func (t *rangeTree) remove(r keyRange, w *watcher) bool {
	n := t.root
	for n != nil {
		c := compareRange(r, n.r)
		if c == 0 {
			break
		}
		if c < 0 {
			n = n.left
		} else {
			n = n.right
		}
	}
	if n == nil {
		return false
	}
	if _, ok := n.watchers[w]; !ok {
		return false
	}
	delete(n.watchers, w)
	if len(n.watchers) == 0 {
		t.root = t.deleteRange(t.root, r)
		t.size--
	}
	return true
}

func (t *rangeTree) deleteRange(n *rangeNode, r keyRange) *rangeNode {
	if n == nil {
		return nil
	}
	switch c := compareRange(r, n.r); {
	case c < 0:
		n.left = t.deleteRange(n.left, r)
	case c > 0:
		n.right = t.deleteRange(n.right, r)
	default:
		if n.left == nil {
			return n.right
		}
		if n.right == nil {
			return n.left
		}
		succ := n.right
		for succ.left != nil {
			succ = succ.left
		}
		succ.right = deleteMin(n.right)
		succ.left = n.left
		n = succ
	}
	return balance(n)
}

func deleteMin(n *rangeNode) *rangeNode {
	if n.left == nil {
		return n.right
	}
	n.left = deleteMin(n.left)
	return balance(n)
}

// stab calls fn for the watcher set of every range containing key.
func (t *rangeTree) stab(key []byte, fn func(watcherSet)) {
	stabNode(t.root, key, fn)
}

func stabNode(n *rangeNode, key []byte, fn func(watcherSet)) {
	for n != nil && n.maxEnd.above(key) {
		stabNode(n.left, key, fn)
		if bytes.Compare(n.r.start, key) > 0 {
			// Every range to the right starts after key too.
			return
		}
		if n.r.contains(key) {
			fn(n.watchers)
		}
		n = n.right
	}
}
