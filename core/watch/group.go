package watch

// watcherSet is a set of watchers.
type watcherSet map[*watcher]struct{}

// watcherGroup indexes the synced watchers for Notify: single-key watchers in
// a map by key, range watchers in an interval tree. Matching one event costs
// one map lookup plus a stabbing query, never a scan of all watchers.
type watcherGroup struct {
	keys   map[string]watcherSet
	ranges rangeTree
	size   int
}

func newWatcherGroup() watcherGroup {
	return watcherGroup{keys: make(map[string]watcherSet)}
}

func (g *watcherGroup) add(w *watcher) {
	g.size++
	if w.single {
		set := g.keys[string(w.key)]
		if set == nil {
			set = make(watcherSet)
			g.keys[string(w.key)] = set
		}
		set[w] = struct{}{}
		return
	}
	g.ranges.add(w.keyRange(), w)
}

// remove takes w out of the group and reports whether it was there.
func (g *watcherGroup) remove(w *watcher) bool {
	if w.single {
		set := g.keys[string(w.key)]
		if _, ok := set[w]; !ok {
			return false
		}
		delete(set, w)
		if len(set) == 0 {
			delete(g.keys, string(w.key))
		}
		g.size--
		return true
	}
	if !g.ranges.remove(w.keyRange(), w) {
		return false
	}
	g.size--
	return true
}

// match calls fn for every watcher in the group whose key or range holds key.
func (g *watcherGroup) match(key []byte, fn func(*watcher)) {
	for w := range g.keys[string(key)] {
		fn(w)
	}
	g.ranges.stab(key, func(set watcherSet) {
		for w := range set {
			fn(w)
		}
	})
}

// all calls fn for every watcher in the group. fn must not change the group.
func (g *watcherGroup) all(fn func(*watcher)) {
	for _, set := range g.keys {
		for w := range set {
			fn(w)
		}
	}
	var walk func(n *rangeNode)
	walk = func(n *rangeNode) {
		if n == nil {
			return
		}
		walk(n.left)
		for w := range n.watchers {
			fn(w)
		}
		walk(n.right)
	}
	walk(g.ranges.root)
}
