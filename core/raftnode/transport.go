package raftnode

import "github.com/hashicorp/raft"

// mainLoopHeartbeats wraps raft's NetworkTransport so that heartbeats are
// not handled on the transport's goroutine. hashicorp/raft's heartbeat
// "fast path" (issue #695, open in v1.8.0) processes heartbeats outside the
// main loop, where they can change the term without the main loop's
// knowledge; after a partition heals, two logs can diverge. Declining the
// handler sends heartbeats through the consumer channel like every other
// RPC. Embedding keeps NetworkTransport's optional interfaces (WithClose,
// WithPreVote) visible to raft's type assertions.
type mainLoopHeartbeats struct {
	*raft.NetworkTransport
}

// SetHeartbeatHandler implements raft.Transport by ignoring the handler.
func (mainLoopHeartbeats) SetHeartbeatHandler(func(raft.RPC)) {}

var (
	_ raft.Transport   = mainLoopHeartbeats{}
	_ raft.WithClose   = mainLoopHeartbeats{}
	_ raft.WithPreVote = mainLoopHeartbeats{}
)
