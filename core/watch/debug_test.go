package watch

import (
	"fmt"
	"strings"
)

// debugString dumps the hub's state for a test that timed out.
func (h *Hub) debugString() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "hub rev=%d watchers=%d slow=%d slowStreams=%d deferred=%d\n", h.rev, h.watchers, h.slowWatchers, len(h.slowStreams), len(h.deferredProgress))
	for s := range h.streams {
		s.mu.Lock()
		fmt.Fprintf(&b, " stream %p watchers=%d slowCount=%d slowq=%d buffered=%d queue=%d control=%d starved=%v\n", s, len(s.watchers), s.slowCount, len(s.slow), s.buffered, len(s.queue)-s.head, s.control, s.starved)
		s.mu.Unlock()
		for _, w := range s.watchers {
			if w.state != stateSynced {
				fmt.Fprintf(&b, "  w%d state=%d minRev=%d start=%d\n", w.id, w.state, w.minRev, w.startRev)
			}
		}
	}
	return b.String()
}
