package server

import (
	"encoding/json"
	"fmt"
	"io"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/raftnode"
)

// stateMachine is the Server seen by raftnode: the applier of committed
// entries. raftnode calls Apply, Snapshot and Restore from one goroutine.
type stateMachine Server

var _ raftnode.StateMachine = (*stateMachine)(nil)

// Apply applies each payload of each entry in log order and records the
// entry's index in the same backend batch as its effects, so that a restart
// resumes exactly after the last entry whose effects are durable.
func (sm *stateMachine) Apply(entries []raftnode.Entry) [][][]byte {
	s := (*Server)(sm)
	s.mu.RLock()
	defer s.mu.RUnlock()
	results := make([][][]byte, len(entries))
	for i, e := range entries {
		if len(e.Payloads) > 0 {
			results[i] = make([][]byte, len(e.Payloads))
			for j, p := range e.Payloads {
				results[i][j] = s.applyPayload(p)
			}
		}
		s.be.SetConsistentIndex(e.Index, e.Term)
	}
	return results
}

func (s *Server) applyPayload(p []byte) []byte {
	if len(p) == 0 {
		return encodeResult(nil, errUnknownRequest)
	}
	switch p[0] {
	case payloadRequest:
		var r pb.InternalRaftRequest
		if err := proto.Unmarshal(p[1:], &r); err != nil {
			return encodeResult(nil, fmt.Errorf("%w: %v", errUnknownRequest, err))
		}
		return encodeResult(s.applyRequest(&r))
	case payloadMembers:
		var c memberChange
		if err := json.Unmarshal(p[1:], &c); err != nil {
			return encodeResult(nil, fmt.Errorf("%w: %v", errUnknownRequest, err))
		}
		return encodeResult(nil, s.applyMemberChange(&c))
	}
	return encodeResult(nil, errUnknownRequest)
}

func (s *Server) applyRequest(r *pb.InternalRaftRequest) (proto.Message, error) {
	switch {
	case r.Put != nil:
		return s.kv.Put(r.Put)
	case r.DeleteRange != nil:
		return s.kv.DeleteRange(r.DeleteRange)
	case r.Txn != nil:
		return s.kv.Txn(r.Txn)
	case r.Compaction != nil:
		return s.kv.Compact(r.Compaction)
	case r.LeaseGrant != nil:
		return s.lessor.Grant(r.LeaseGrant)
	case r.LeaseRevoke != nil:
		return s.lessor.Revoke(r.LeaseRevoke.ID, s.kv)
	case r.LeaseCheckpoint != nil:
		return s.lessor.Checkpoint(r.LeaseCheckpoint)
	case r.ClusterMemberAttrSet != nil:
		a := r.ClusterMemberAttrSet
		if a.MemberAttributes == nil {
			return nil, fmt.Errorf("%w: member attributes missing", errUnknownRequest)
		}
		m, err := s.members.setAttributes(a.Member_ID, a.MemberAttributes.Name, a.MemberAttributes.ClientUrls)
		if err != nil {
			return nil, err
		}
		putMember(s.be, m)
		return nil, nil
	}
	return nil, errUnknownRequest
}

func (s *Server) applyMemberChange(c *memberChange) error {
	put, del, err := s.members.apply(c)
	if err != nil {
		return err
	}
	if c.Op == opInit && len(put) > 0 {
		putClusterID(s.be, c.ClusterID)
	}
	for _, m := range put {
		putMember(s.be, m)
	}
	for _, id := range del {
		deleteMember(s.be, id)
	}
	return nil
}

// AppliedIndex is the index of the last entry applied into the backend.
func (sm *stateMachine) AppliedIndex() uint64 {
	s := (*Server)(sm)
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, _ := s.be.ConsistentIndex()
	return idx
}

// Snapshot commits the backend and captures the database as of now.
func (sm *stateMachine) Snapshot() (raftnode.Snapshot, error) {
	s := (*Server)(sm)
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap, err := s.be.BeginSnapshot()
	if err != nil {
		return nil, fmt.Errorf("snapshot backend: %w", err)
	}
	return snapshot{snap}, nil
}

// Restore replaces the database with the leader's snapshot and reopens
// everything built on it.
func (sm *stateMachine) Restore(r io.Reader) error {
	s := (*Server)(sm)
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp := dbPath(s.cfg.DataDir) + ".restore"
	if err := backendWriteSnapshot(tmp, r); err != nil {
		return fmt.Errorf("receive snapshot: %w", err)
	}
	if err := s.closeStorage(); err != nil {
		return fmt.Errorf("close storage for restore: %w", err)
	}
	if err := replaceFile(tmp, dbPath(s.cfg.DataDir)); err != nil {
		return fmt.Errorf("install snapshot: %w", err)
	}
	if err := s.openStorage(); err != nil {
		return fmt.Errorf("reopen storage after restore: %w", err)
	}
	s.notifyWatchRestoredLocked()
	idx, _ := s.be.ConsistentIndex()
	s.log.Info("installed snapshot from leader", "applied-index", idx, "revision", s.kv.Rev())
	return nil
}
