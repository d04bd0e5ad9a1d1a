package server

import (
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/concordkv/concord/core/mvcc"
	"github.com/concordkv/concord/core/watch"
)

// The watch hub lives as long as the Server; the store under it does not (a
// raft snapshot install reopens it). The hub therefore reads history through
// watchSource, which always reaches the store that is current when it is
// called, and is fed by notifyWatch, which every store the Server opens
// calls after each write.

// newWatchHub starts the hub over the store opened by openStorage. It must
// run before Raft starts applying, so that no revision is missed.
func (s *Server) newWatchHub() (*watch.Hub, error) {
	cfg := watch.DefaultConfig()
	cfg.Source = (*watchSource)(s)
	cfg.Logger = s.log
	cfg.IsCompacted = func(err error) bool { return errors.Is(err, mvcc.ErrCompacted) }
	if s.cfg.WatchProgressNotifyInterval > 0 {
		cfg.ProgressNotifyInterval = max(s.cfg.WatchProgressNotifyInterval, watch.MinProgressNotifyInterval)
	}
	// A fragmented response is cut where a client request would be refused.
	cfg.MaxFragmentBytes = s.cfg.MaxRequestBytes
	hub, err := watch.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("start watch hub: %w", err)
	}
	return hub, nil
}

// notifyWatch is the store's OnWrite: it runs on the applier goroutine,
// under the store's write lock, in revision order.
func (s *Server) notifyWatch(rev int64, events []*mvccpb.Event) {
	if s.hub != nil {
		s.hub.Notify(rev, events)
	}
}

// notifyWatchRestoredLocked tells the hub that the store jumped to a snapshot's
// revision: every watcher is caught up from the new store (or cancelled
// with the compact revision when its history is gone). Caller holds s.mu.
func (s *Server) notifyWatchRestoredLocked() {
	if s.hub != nil {
		s.hub.Notify(s.kv.Rev(), nil)
	}
}

// NewWatchStream opens the hub side of one client Watch stream; close it
// when the client stream ends.
func (s *Server) NewWatchStream() (*watch.Stream, error) {
	st, err := s.hub.NewStream()
	if errors.Is(err, watch.ErrHubClosed) {
		return nil, ErrStopped
	}
	return st, err
}

// WatchStats reports the watch hub's load (streams, watchers, events
// buffered for consumers).
func (s *Server) WatchStats() watch.Stats { return s.hub.Stats() }

// HasLeader reports whether this member currently knows a Raft leader
// (itself included).
func (s *Server) HasLeader() bool { return s.node.Status().Leader != 0 }

// watchSource is the Server seen by the hub: the current store, read under
// the shared lock so that a snapshot install never swaps it mid-read.
type watchSource Server

var _ watch.EventSource = (*watchSource)(nil)

func (ws *watchSource) Rev() int64 {
	s := (*Server)(ws)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.Rev()
}

func (ws *watchSource) CompactRevision() int64 {
	s := (*Server)(ws)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.CompactRevision()
}

func (ws *watchSource) Events(key, end []byte, fromRev, toRev int64, limit int) ([]*mvccpb.Event, int64, error) {
	s := (*Server)(ws)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.Events(key, end, fromRev, toRev, limit)
}

func (ws *watchSource) ValueAt(key []byte, rev int64) (*mvccpb.KeyValue, error) {
	if rev < 1 {
		// Revision 0 would read the current value; nothing exists
		// before revision 1.
		return nil, nil
	}
	s := (*Server)(ws)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.kv.RangeAt(key, rev)
}
