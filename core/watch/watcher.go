package watch

import "go.etcd.io/etcd/api/v3/mvccpb"

type watchState uint8

const (
	// stateSynced: in the hub's synced group, fed by Notify.
	stateSynced watchState = iota
	// stateSlow: in its stream's catch-up queue.
	stateSlow
	// stateFetching: popped by a catch-up round that is reading the source.
	stateFetching
	// stateCanceled: gone; any reference left is stale.
	stateCanceled
)

// watcher is one watch on a stream.
type watcher struct {
	// Set at creation, then read-only.
	id     int64
	stream *Stream
	// key and end follow etcd's conventions (end nil: the single key;
	// end "\x00": every key >= key) and are passed to Source.Events as is.
	key            []byte
	end            []byte
	single         bool
	startRev       int64
	noPut          bool
	noDelete       bool
	prevKV         bool
	progressNotify bool
	fragment       bool

	// Guarded by Hub.mu.
	state watchState
	// minRev is the next revision the watcher needs: every matching event
	// below it has been queued. For a synced watcher it may lag (Notify
	// only updates watchers it sends to); it then only guards a start
	// revision in the future.
	minRev int64
	// pending is Notify's scratch: this revision's matching events.
	pending []*mvccpb.Event
	// sentSinceTick: events were queued since the last progress tick.
	sentSinceTick bool

	// Guarded by Stream.mu: a progress notification for this watcher is
	// queued and not yet received.
	progressQueued bool
}

func (w *watcher) keyRange() keyRange {
	if len(w.end) == 1 && w.end[0] == 0 {
		return keyRange{start: w.key, unbounded: true}
	}
	return keyRange{start: w.key, end: w.end}
}

// filtered reports whether the watcher's filters drop ev.
func (w *watcher) filtered(ev *mvccpb.Event) bool {
	switch ev.Type {
	case mvccpb.Event_PUT:
		return w.noPut
	case mvccpb.Event_DELETE:
		return w.noDelete
	}
	return false
}

// filter returns the events the watcher keeps from evs, sharing evs when it
// keeps all of them.
func (w *watcher) filter(evs []*mvccpb.Event) []*mvccpb.Event {
	if !w.noPut && !w.noDelete {
		return evs
	}
	var out []*mvccpb.Event
	for i, ev := range evs {
		if w.filtered(ev) {
			if out == nil {
				out = make([]*mvccpb.Event, i, len(evs))
				copy(out, evs[:i])
			}
			continue
		}
		if out != nil {
			out = append(out, ev)
		}
	}
	if out == nil {
		return evs
	}
	return out
}
