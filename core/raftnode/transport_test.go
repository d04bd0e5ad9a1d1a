package raftnode

import (
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// heartbeatReaches sends one heartbeat to server (after installing a
// fast-path handler through install) and reports whether the handler or
// the consumer channel received it.
func heartbeatReaches(t *testing.T, server raft.Transport, install func(func(raft.RPC)), addr raft.ServerAddress) (viaHandler, viaConsumer bool) {
	t.Helper()
	var handler, consumer atomic.Bool
	install(func(rpc raft.RPC) {
		handler.Store(true)
		rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case rpc := <-server.Consumer():
			consumer.Store(true)
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: true}, nil)
		case <-time.After(5 * time.Second):
		}
	}()
	client, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("leader"), Addr: []byte(client.LocalAddr())},
		Term:      1,
	}
	var resp raft.AppendEntriesResponse
	if err := client.AppendEntries("follower", addr, req, &resp); err != nil {
		t.Fatal(err)
	}
	if !handler.Load() {
		<-done
	}
	return handler.Load(), consumer.Load()
}

// TestHeartbeatsGoThroughTheMainLoop: raft's NetworkTransport hands
// heartbeats to a fast-path handler when one is installed (issue #695);
// the wrapper declines it, so they reach the consumer channel that raft's
// main loop reads, while the wrapper keeps the optional interfaces.
func TestHeartbeatsGoThroughTheMainLoop(t *testing.T) {
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if h, c := heartbeatReaches(t, plain, plain.SetHeartbeatHandler, plain.LocalAddr()); !h || c {
		t.Fatalf("unwrapped transport: handler=%v consumer=%v; the test cannot tell the paths apart", h, c)
	}

	inner, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, 5*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := mainLoopHeartbeats{inner, newCommitStamp(), newPeerContacts()}
	defer wrapped.Close()
	if h, c := heartbeatReaches(t, wrapped, wrapped.SetHeartbeatHandler, wrapped.LocalAddr()); h || !c {
		t.Fatalf("wrapped transport: handler=%v consumer=%v, want the consumer only", h, c)
	}
	var tr raft.Transport = wrapped
	if _, ok := tr.(raft.WithPreVote); !ok {
		t.Error("wrapper hides WithPreVote: raft would disable pre-vote")
	}
	if _, ok := tr.(raft.WithClose); !ok {
		t.Error("wrapper hides WithClose")
	}
}

// TestCommitStampCapsAtMatch: a heartbeat carries the commit index only to
// a follower whose log is known to match, capped at the match, and only in
// the term that proved the match.
func TestCommitStampCapsAtMatch(t *testing.T) {
	s := newCommitStamp()
	if got := s.commitFor("f", 3); got != 0 {
		t.Fatalf("before raft exists: %d", got)
	}
	cs := &fakeCommit{index: 50}
	s.commitIndex = cs.get
	if got := s.commitFor("f", 3); got != 0 {
		t.Fatalf("no match known: %d", got)
	}
	s.matched("f", 3, 40)
	s.matched("f", 3, 30) // late, smaller answer: ignored
	if got := s.commitFor("f", 3); got != 40 {
		t.Fatalf("capped at match: %d, want 40", got)
	}
	cs.index = 20
	if got := s.commitFor("f", 3); got != 20 {
		t.Fatalf("capped at commit: %d, want 20", got)
	}
	if got := s.commitFor("f", 4); got != 0 {
		t.Fatalf("match of term 3 used in term 4: %d", got)
	}
	s.matched("f", 4, 10)
	s.matched("f", 3, 45) // an answer from the old term: ignored
	cs.index = 100
	if got := s.commitFor("f", 4); got != 10 {
		t.Fatalf("term 4 match: %d, want 10", got)
	}
	if got := s.commitFor("g", 4); got != 0 {
		t.Fatalf("other follower: %d", got)
	}
}

type fakeCommit struct{ index uint64 }

func (f *fakeCommit) get() uint64 { return f.index }
