package watch

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// memStore is the tests' EventSource: a multi-version map with a log of
// every revision's events and compaction. Writes go through write, which
// also calls the hub's Notify, as the applier does.
type memStore struct {
	mu      sync.RWMutex
	rev     int64
	compact int64
	// log holds the revisions above compact, in order; full all of them,
	// for computing what watchers should have received.
	log  []memRevision
	full []memRevision
	// versions of every key, oldest first; a nil kv is a delete.
	versions map[string][]memVersion
	// eventsCalls counts Events calls (to see reads shared).
	eventsCalls int
}

type memRevision struct {
	rev    int64
	events []*mvccpb.Event
}

type memVersion struct {
	rev int64
	kv  *mvccpb.KeyValue
}

var _ EventSource = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{versions: make(map[string][]memVersion)}
}

// op is one write of a transaction: a put, or a delete when del is set.
type op struct {
	key, val string
	del      bool
}

func put(k, v string) op { return op{key: k, val: v} }
func del(k string) op    { return op{key: k, del: true} }

// write applies ops as one revision and returns its events (nil and no
// revision if nothing changed, as deleting an absent key).
func (m *memStore) write(ops ...op) (int64, []*mvccpb.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rev := m.rev + 1
	var evs []*mvccpb.Event
	for _, o := range ops {
		vs := m.versions[o.key]
		var cur *mvccpb.KeyValue
		if len(vs) > 0 {
			cur = vs[len(vs)-1].kv
		}
		if o.del {
			if cur == nil {
				continue
			}
			m.versions[o.key] = append(vs, memVersion{rev: rev})
			evs = append(evs, &mvccpb.Event{Type: mvccpb.Event_DELETE, Kv: &mvccpb.KeyValue{Key: []byte(o.key), ModRevision: rev}})
			continue
		}
		kv := &mvccpb.KeyValue{Key: []byte(o.key), Value: []byte(o.val), CreateRevision: rev, ModRevision: rev, Version: 1}
		if cur != nil {
			kv.CreateRevision = cur.CreateRevision
			kv.Version = cur.Version + 1
		}
		m.versions[o.key] = append(vs, memVersion{rev: rev, kv: kv})
		evs = append(evs, &mvccpb.Event{Type: mvccpb.Event_PUT, Kv: kv})
	}
	if len(evs) == 0 {
		return 0, nil
	}
	m.rev = rev
	m.log = append(m.log, memRevision{rev: rev, events: evs})
	m.full = append(m.full, memRevision{rev: rev, events: evs})
	return rev, evs
}

// compactTo drops history up to and including rev.
func (m *memStore) compactTo(rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.compact = rev
	i := sort.Search(len(m.log), func(i int) bool { return m.log[i].rev > rev })
	m.log = append([]memRevision(nil), m.log[i:]...)
}

func (m *memStore) Rev() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rev
}

func (m *memStore) CompactRevision() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.compact
}

func inRange(key, start, end []byte) bool {
	switch {
	case end == nil:
		return bytes.Equal(key, start)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(key, start) >= 0
	}
	return bytes.Compare(key, start) >= 0 && bytes.Compare(key, end) < 0
}

func (m *memStore) Events(key, end []byte, fromRev, toRev int64, limit int) ([]*mvccpb.Event, int64, error) {
	m.mu.Lock()
	m.eventsCalls++
	m.mu.Unlock()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if fromRev <= m.compact {
		return nil, 0, fmt.Errorf("mem store: events from %d: %w", fromRev, ErrCompacted)
	}
	var out []*mvccpb.Event
	i := sort.Search(len(m.log), func(i int) bool { return m.log[i].rev >= fromRev })
	for ; i < len(m.log) && m.log[i].rev <= toRev; i++ {
		var match []*mvccpb.Event
		for _, ev := range m.log[i].events {
			if inRange(ev.Kv.Key, key, end) {
				match = append(match, ev)
			}
		}
		if len(out) > 0 && len(out)+len(match) > limit {
			return out, m.log[i].rev, nil
		}
		out = append(out, match...)
	}
	return out, toRev + 1, nil
}

func (m *memStore) ValueAt(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if rev < m.compact {
		return nil, fmt.Errorf("mem store: value at %d: %w", rev, ErrCompacted)
	}
	vs := m.versions[string(key)]
	i := sort.Search(len(vs), func(i int) bool { return vs[i].rev > rev })
	if i == 0 {
		return nil, nil
	}
	return vs[i-1].kv, nil
}

// expected returns the events of revisions >= fromRev for [key, end), in
// order, from the full history (ignores compaction).
func (m *memStore) expected(key, end []byte, fromRev int64) []*mvccpb.Event {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*mvccpb.Event
	for _, r := range m.full {
		if r.rev < fromRev {
			continue
		}
		for _, ev := range r.events {
			if inRange(ev.Kv.Key, key, end) {
				out = append(out, ev)
			}
		}
	}
	return out
}

// writer is the applier of the tests: one goroutine writes and notifies.
type writer struct {
	store *memStore
	hub   *Hub
}

func (w writer) write(ops ...op) int64 {
	rev, evs := w.store.write(ops...)
	if rev != 0 {
		w.hub.Notify(rev, evs)
	}
	return rev
}

// recorder collects a stream's responses.
type recorder struct {
	mu    sync.Mutex
	resps []Response
	// progress is the highest stream-wide progress revision seen;
	// events counts events per watch id. Waiting on these is O(1) per
	// response where a condition over all responses would be quadratic.
	progress int64
	events   map[int64]int
	// changed is closed on the next response when waiting is set.
	changed chan struct{}
	waiting bool
	hub     *Hub
	done    chan struct{}
}

// record starts reading s.Chan() until it is closed.
func record(s *Stream) *recorder {
	r := &recorder{changed: make(chan struct{}), done: make(chan struct{}), events: make(map[int64]int), hub: s.hub}
	go func() {
		defer close(r.done)
		for resp := range s.Chan() {
			r.mu.Lock()
			r.resps = append(r.resps, resp)
			r.events[resp.WatchID] += len(resp.Events)
			if resp.WatchID == ProgressWatchID && resp.IsProgressNotify() {
				r.progress = max(r.progress, resp.Revision)
			}
			if r.waiting {
				close(r.changed)
				r.changed = make(chan struct{})
				r.waiting = false
			}
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) snapshot() []Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Response(nil), r.resps...)
}

// waitTimeout bounds every wait in these tests: reaching it is a failure.
const waitTimeout = 20 * time.Second

// waitFor waits until cond holds for the responses so far.
func (r *recorder) waitFor(t testing.TB, what string, cond func([]Response) bool) []Response {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		if cond(r.resps) {
			out := append([]Response(nil), r.resps...)
			r.mu.Unlock()
			return out
		}
		ch := r.changed
		r.waiting = true
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; have %d responses: %s\n%s", what, len(r.snapshot()), describe(r.snapshot()), r.hub.debugString())
		}
	}
}

func describe(rs []Response) string {
	var b bytes.Buffer
	for i, r := range rs {
		if i == 20 {
			fmt.Fprintf(&b, " ...")
			break
		}
		fmt.Fprintf(&b, " {id=%d rev=%d evs=%d created=%v canceled=%v compact=%d frag=%v}", r.WatchID, r.Revision, len(r.Events), r.Created, r.Canceled, r.CompactRevision, r.Fragment)
	}
	return b.String()
}

// eventsOf returns the events sent to watch id, in order.
func eventsOf(rs []Response, id int64) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, r := range rs {
		if r.WatchID == id {
			out = append(out, r.Events...)
		}
	}
	return out
}

// waitProgress waits for a stream-wide progress reply at rev or later.
func (r *recorder) waitProgress(t testing.TB, rev int64) []Response {
	t.Helper()
	return r.waitFor(t, fmt.Sprintf("progress at %d", rev), func([]Response) bool { return r.progress >= rev })
}

// waitEvents waits until watch id has received n events.
func (r *recorder) waitEvents(t testing.TB, id int64, n int) []Response {
	t.Helper()
	return r.waitFor(t, fmt.Sprintf("%d events for watch %d", n, id), func([]Response) bool { return r.events[id] >= n })
}

func sameEvents(t testing.TB, what string, got, want []*mvccpb.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d (got %s, want %s)", what, len(got), len(want), evString(got), evString(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Type != w.Type || !bytes.Equal(g.Kv.Key, w.Kv.Key) || g.Kv.ModRevision != w.Kv.ModRevision || !bytes.Equal(g.Kv.Value, w.Kv.Value) {
			t.Fatalf("%s: event %d is %s, want %s", what, i, evString(got[i:i+1]), evString(want[i:i+1]))
		}
	}
}

func evString(evs []*mvccpb.Event) string {
	var b bytes.Buffer
	for i, ev := range evs {
		if i == 10 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " %s %q@%d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision)
	}
	return b.String()
}
