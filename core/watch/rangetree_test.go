package watch

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// checkTree verifies the AVL balance, the order and the max-end
// augmentation of every node, and returns the subtree height.
func checkTree(t *testing.T, n *rangeNode) int {
	t.Helper()
	if n == nil {
		return 0
	}
	lh, rh := checkTree(t, n.left), checkTree(t, n.right)
	if lh-rh > 1 || rh-lh > 1 {
		t.Fatalf("unbalanced node %q: heights %d and %d", n.r.start, lh, rh)
	}
	if n.height != 1+max(lh, rh) {
		t.Fatalf("node %q height %d, want %d", n.r.start, n.height, 1+max(lh, rh))
	}
	if n.left != nil && compareRange(n.left.r, n.r) >= 0 || n.right != nil && compareRange(n.right.r, n.r) <= 0 {
		t.Fatalf("order broken at %q", n.r.start)
	}
	want := upper{end: n.r.end, unbounded: n.r.unbounded}
	if n.left != nil {
		want = maxUpper(want, n.left.maxEnd)
	}
	if n.right != nil {
		want = maxUpper(want, n.right.maxEnd)
	}
	if want.unbounded != n.maxEnd.unbounded || !want.unbounded && !bytes.Equal(want.end, n.maxEnd.end) {
		t.Fatalf("node %q max end %q/%v, want %q/%v", n.r.start, n.maxEnd.end, n.maxEnd.unbounded, want.end, want.unbounded)
	}
	if len(n.watchers) == 0 {
		t.Fatalf("node %q holds no watchers", n.r.start)
	}
	return n.height
}

func TestRangeTreeAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() []byte { return []byte{byte('a' + rng.IntN(20)), byte('a' + rng.IntN(3))} }
	var tree rangeTree
	live := map[*watcher]keyRange{}
	for step := range 6000 {
		switch {
		case len(live) < 300 && rng.IntN(3) > 0:
			start := key()
			r := keyRange{start: start}
			if rng.IntN(5) == 0 {
				r.unbounded = true
			} else {
				r.end = append(bytes.Clone(start), byte('a'+rng.IntN(3)))
				if rng.IntN(2) == 0 {
					r.end = key()
				}
			}
			w := &watcher{}
			live[w] = r
			tree.add(r, w)
		case len(live) > 0:
			for w, r := range live {
				if !tree.remove(r, w) {
					t.Fatalf("step %d: remove of a present watcher failed", step)
				}
				if tree.remove(r, w) {
					t.Fatalf("step %d: second remove succeeded", step)
				}
				delete(live, w)
				break
			}
		}
		if step%100 == 0 {
			checkTree(t, tree.root)
		}
		p := key()
		got := map[*watcher]bool{}
		tree.stab(p, func(set watcherSet) {
			for w := range set {
				if got[w] {
					t.Fatalf("step %d: watcher reported twice", step)
				}
				got[w] = true
			}
		})
		for w, r := range live {
			if r.contains(p) != got[w] {
				t.Fatalf("step %d: key %q in %q-%q (unbounded %v): brute force %v, tree %v", step, p, r.start, r.end, r.unbounded, r.contains(p), got[w])
			}
		}
	}
	for w, r := range live {
		tree.remove(r, w)
	}
	if tree.root != nil || tree.size != 0 {
		t.Fatalf("tree not empty after removing everything: size %d", tree.size)
	}
}

func TestWatcherGroupSharesRangeNodes(t *testing.T) {
	g := newWatcherGroup()
	ws := make([]*watcher, 1000)
	for i := range ws {
		ws[i] = &watcher{key: []byte("p/"), end: prefixEnd("p/")}
		g.add(ws[i])
	}
	single := &watcher{key: []byte("p/x"), single: true}
	g.add(single)
	if g.ranges.size != 1 || g.size != 1001 {
		t.Fatalf("1000 watchers on one prefix: %d tree nodes, group size %d; want 1 node, 1001", g.ranges.size, g.size)
	}
	n := 0
	g.match([]byte("p/x"), func(*watcher) { n++ })
	if n != 1001 {
		t.Fatalf("matched %d watchers, want 1001", n)
	}
	for _, w := range ws {
		if !g.remove(w) {
			t.Fatal("remove failed")
		}
	}
	if !g.remove(single) || g.size != 0 || g.ranges.root != nil || len(g.keys) != 0 {
		t.Fatalf("group not empty: size %d", g.size)
	}
}
