package raftnode

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// mainLoopHeartbeats wraps raft's NetworkTransport for two reasons.
//
// Heartbeats are not handled on the transport's goroutine. hashicorp/raft's
// heartbeat "fast path" (issue #695, open in v1.8.0) processes heartbeats
// outside the main loop, where they can change the term without the main
// loop's knowledge; after a partition heals, two logs can diverge.
// Declining the handler sends heartbeats through the consumer channel like
// every other RPC.
//
// Heartbeats carry the leader's commit index (see commitStamp), so that a
// follower applies a committed entry one heartbeat after the commit instead
// of waiting for the next AppendEntries (up to two CommitTimeouts when
// writes pause): follower reads and watches then see a write about as soon
// as the leader answers it.
//
// Embedding keeps NetworkTransport's optional interfaces (WithClose,
// WithPreVote) visible to raft's type assertions.
type mainLoopHeartbeats struct {
	*raft.NetworkTransport
	stamp    *commitStamp
	contacts *peerContacts
}

// SetHeartbeatHandler implements raft.Transport by ignoring the handler.
func (mainLoopHeartbeats) SetHeartbeatHandler(func(raft.RPC)) {}

// AppendEntries sends args; it records how far a follower's log is known
// to match this leader's, and stamps heartbeats with the commit index.
func (t mainLoopHeartbeats) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	heartbeat := isHeartbeat(args)
	if heartbeat {
		if c := t.stamp.commitFor(id, args.Term); c > 0 {
			stamped := *args
			stamped.LeaderCommitIndex = c
			args = &stamped
		}
	}
	if err := t.NetworkTransport.AppendEntries(id, target, args, resp); err != nil {
		return err
	}
	t.contacts.answered(id)
	if !heartbeat && resp.Success {
		index := args.PrevLogEntry + uint64(len(args.Entries))
		t.stamp.matched(id, args.Term, index)
		// The follower stored entries that may be committed already (by a
		// quorum that answered first) while the request told it an older
		// commit index: when nothing else is on its way to tell it, ask for
		// a heartbeat round that does.
		if index > args.LeaderCommitIndex && t.stamp.afterLateMatch != nil {
			t.stamp.afterLateMatch(index)
		}
	}
	return nil
}

// isHeartbeat tells raft's heartbeats (no entries, no previous entry, no
// commit index) from replication requests.
func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return len(a.Entries) == 0 && a.PrevLogEntry == 0 && a.PrevLogTerm == 0 && a.LeaderCommitIndex == 0
}

// commitStamp knows, per follower, the highest index up to which its log
// is known to equal this leader's: a successful AppendEntries in term T
// ending at index M proves it up to M, and within one term the leader never
// rewrites its entries, so the proof holds until the term changes. A
// heartbeat may then tell that follower the commit index, capped at M.
// Capping matters: hashicorp/raft's follower commits min(leader commit,
// its last index) from any AppendEntries, and a heartbeat skips the log
// consistency check, so an uncapped index could commit a stale entry of an
// earlier term that the leader has overwritten.
type commitStamp struct {
	// commitIndex reads the leader's commit index (0 until raft exists).
	// Open sets it and afterLateMatch before raft sends anything; a stamp
	// without them (a transport tested alone) stamps nothing.
	commitIndex func() uint64

	// afterLateMatch, if set, is called when a follower acknowledged
	// entries up to index that its request did not tell it were committed.
	afterLateMatch func(index uint64)

	mu    sync.Mutex // guards match
	match map[raft.ServerID]matchPoint
}

type matchPoint struct{ term, index uint64 }

func newCommitStamp() *commitStamp {
	return &commitStamp{match: make(map[raft.ServerID]matchPoint)}
}

func (s *commitStamp) matched(id raft.ServerID, term, index uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m := s.match[id]; {
	case term > m.term:
		s.match[id] = matchPoint{term: term, index: index}
	case term == m.term && index > m.index:
		s.match[id] = matchPoint{term: term, index: index}
	}
}

// commitFor is the commit index a heartbeat of term may carry to id (0:
// none).
func (s *commitStamp) commitFor(id raft.ServerID, term uint64) uint64 {
	if s.commitIndex == nil {
		return 0
	}
	s.mu.Lock()
	m := s.match[id]
	s.mu.Unlock()
	if m.term != term {
		return 0
	}
	return min(s.commitIndex(), m.index)
}

// peerContacts remembers when each follower last answered one of this
// member's AppendEntries (heartbeats included), which only a leader sends:
// the strict reconfiguration check counts the voters in contact.
type peerContacts struct {
	mu   sync.Mutex // guards last
	last map[raft.ServerID]time.Time
}

func newPeerContacts() *peerContacts {
	return &peerContacts{last: make(map[raft.ServerID]time.Time)}
}

func (c *peerContacts) answered(id raft.ServerID) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last[id] = now
}

// lastAnswer returns when id last answered (zero: never).
func (c *peerContacts) lastAnswer(id raft.ServerID) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[id]
}

var (
	_ raft.Transport   = mainLoopHeartbeats{}
	_ raft.WithClose   = mainLoopHeartbeats{}
	_ raft.WithPreVote = mainLoopHeartbeats{}
)
