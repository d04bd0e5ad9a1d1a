package watch

import (
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// pump is the stream's goroutine: it moves the queue to Chan, filling
// prev_kv (which reads the source, so it is done here and never in Notify)
// and splitting fragments on the way, and runs the stream's progress
// ticker. Owned by the Stream; Close stops it and waits.
func (s *Stream) pump() {
	defer close(s.out)
	// Jitter, as etcd does, so that streams created together do not all
	// report progress at the same moment.
	interval := s.hub.cfg.ProgressNotifyInterval
	ticker := time.NewTicker(interval + rand.N(interval/10+1))
	defer ticker.Stop()
	for {
		// Checked on every turn, not only when idle: one busy watcher
		// must not starve the progress of the others.
		select {
		case <-ticker.C:
			s.hub.progressTick(s)
		default:
		}
		q, ok := s.pop()
		if !ok {
			select {
			case <-s.ready:
			case <-ticker.C:
				s.hub.progressTick(s)
			case <-s.done:
				return
			}
			continue
		}
		sent := s.send(q)
		s.delivered(q)
		if !sent {
			return
		}
	}
}

// send hands one queue entry to the consumer, as one or more responses.
func (s *Stream) send(q queued) bool {
	r := q.resp
	if q.events > 0 {
		r.Events = s.prepareEvents(q.w, r.Events)
		if q.w.fragment {
			for _, part := range fragments(r, s.hub.cfg.MaxFragmentBytes) {
				if !s.sendOne(part) {
					return false
				}
			}
			return true
		}
	}
	return s.sendOne(r)
}

func (s *Stream) sendOne(r Response) bool {
	select {
	case s.out <- r:
		return true
	case <-s.done:
		return false
	}
}

// prepareEvents returns the events as watcher w must see them: with
// prev_kv when it asked (read from the source at the revision before the
// event; left empty for a create, or when that revision is compacted),
// without otherwise. The shared events are never modified.
func (s *Stream) prepareEvents(w *watcher, evs []*mvccpb.Event) []*mvccpb.Event {
	if !w.prevKV {
		for i, ev := range evs {
			if ev.PrevKv == nil {
				continue
			}
			out := make([]*mvccpb.Event, len(evs))
			copy(out, evs[:i])
			for j := i; j < len(evs); j++ {
				out[j] = evs[j]
				if evs[j].PrevKv != nil {
					out[j] = &mvccpb.Event{Type: evs[j].Type, Kv: evs[j].Kv}
				}
			}
			return out
		}
		return evs
	}
	out := make([]*mvccpb.Event, len(evs))
	for i, ev := range evs {
		cp := &mvccpb.Event{Type: ev.Type, Kv: ev.Kv, PrevKv: ev.PrevKv}
		isCreate := ev.Type == mvccpb.Event_PUT && ev.Kv.CreateRevision == ev.Kv.ModRevision
		if cp.PrevKv == nil && !isCreate {
			kv, err := s.hub.src.ValueAt(ev.Kv.Key, ev.Kv.ModRevision-1)
			switch {
			case err == nil:
				cp.PrevKv = kv
			case !s.hub.cfg.IsCompacted(err):
				s.hub.log.Warn("watch: read prev_kv", "key", string(ev.Kv.Key), "rev", ev.Kv.ModRevision-1, "err", err)
			}
		}
		out[i] = cp
	}
	return out
}

// fragments splits r as etcd's sendFragments does: r is sent whole when its
// encoding is below maxBytes or it has fewer than two events; otherwise
// each part takes events while it stays below maxBytes (at least one
// event), and all parts but the last are flagged Fragment.
func fragments(r Response, maxBytes int) []Response {
	if len(r.Events) < 2 {
		return []Response{r}
	}
	// A repeated message field encodes as the sum of its elements, so
	// sizes add up; the header is sized at its largest.
	sizes := make([]int, len(r.Events))
	total := 0
	for i, ev := range r.Events {
		n := proto.Size(ev)
		sizes[i] = protowire.SizeTag(11) + protowire.SizeBytes(n)
		total += sizes[i]
	}
	widest := &pb.ResponseHeader{ClusterId: ^uint64(0), MemberId: ^uint64(0), RaftTerm: ^uint64(0)}
	base := proto.Size(Response{WatchID: r.WatchID, Revision: r.Revision, Fragment: true}.ToProto(widest))
	if base+total < maxBytes {
		return []Response{r}
	}
	var parts []Response
	for i := 0; i < len(r.Events); {
		j, size := i+1, base+sizes[i]
		for j < len(r.Events) && size+sizes[j] < maxBytes {
			size += sizes[j]
			j++
		}
		part := r
		part.Events = r.Events[i:j:j]
		part.Fragment = j < len(r.Events)
		parts = append(parts, part)
		i = j
	}
	return parts
}

// progressTick sends progress notifications to the stream's watchers that
// asked for them and are synced, past their start revision, and received no
// events since the previous tick (etcd's rules).
func (h *Hub) progressTick(s *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.progressWatchers == 0 {
		return
	}
	for _, w := range s.watchers {
		if !w.progressNotify {
			continue
		}
		if w.sentSinceTick {
			w.sentSinceTick = false
			continue
		}
		if w.state != stateSynced || h.rev < w.startRev {
			continue
		}
		s.enqueueControl(Response{WatchID: w.id, Revision: h.rev}, w, false)
	}
}
