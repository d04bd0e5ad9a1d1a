package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/raftnode"
)

// MemberList returns the member table; linearizable waits for the read
// barrier first.
func (s *Server) MemberList(ctx context.Context, linearizable bool) ([]*pb.Member, error) {
	if linearizable {
		if err := s.readBarrier(ctx); err != nil {
			return nil, err
		}
	}
	return s.members.List(), nil
}

// MemberAdd adds a member (a voter, or a learner that does not vote until
// promoted): first its row in the replicated table, then the Raft
// configuration entry. The new member starts with
// --initial-cluster-state=existing and learns its ID from the table.
func (s *Server) MemberAdd(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error) {
	addr, err := peerAddr(peerURLs)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkMemberAdd(learner); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	m := memberInfo{ID: computeMemberID(peerURLs, s.cfg.InitialClusterToken, &now), PeerURLs: peerURLs, IsLearner: learner}
	if s.cfg.StrictReconfigCheck {
		// Asked before the member enters the table, so that a refused add
		// leaves nothing to undo.
		if err := s.node.CheckAddMember(ctx, m.ID, addr, learner); err != nil {
			return nil, nil, fmt.Errorf("add member %x: %w", m.ID, err)
		}
	}
	if err := s.proposeMemberChange(ctx, &memberChange{Op: opAdd, Member: m}); err != nil {
		return nil, nil, err
	}
	if err := s.node.AddMember(ctx, m.ID, addr, learner); err != nil {
		s.undoMemberChange(&memberChange{Op: opRemove, Member: memberInfo{ID: m.ID}})
		return nil, nil, fmt.Errorf("add member %x to raft: %w", m.ID, err)
	}
	s.log.Info("added member", "id", fmt.Sprintf("%x", m.ID), "peer-urls", peerURLs, "learner", learner)
	return m.proto(), s.members.List(), nil
}

// MemberRemove removes a member from Raft and then from the table.
func (s *Server) MemberRemove(ctx context.Context, id uint64) ([]*pb.Member, error) {
	if _, ok := s.members.Get(id); !ok {
		return nil, ErrMemberNotFound
	}
	if s.cfg.StrictReconfigCheck && !s.members.enoughStartedAfter(opRemove, id) {
		return nil, ErrNotEnoughStarted
	}
	if err := s.node.RemoveMember(ctx, id); err != nil && !errors.Is(err, raftnode.ErrMemberNotFound) {
		return nil, fmt.Errorf("remove member %x from raft: %w", id, err)
	}
	if err := s.proposeMemberChange(ctx, &memberChange{Op: opRemove, Member: memberInfo{ID: id}}); err != nil {
		return nil, err
	}
	s.log.Info("removed member", "id", fmt.Sprintf("%x", id))
	return s.members.List(), nil
}

// MemberUpdate changes a member's peer URLs.
func (s *Server) MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error) {
	addr, err := peerAddr(peerURLs)
	if err != nil {
		return nil, err
	}
	m, ok := s.members.Get(id)
	if !ok {
		return nil, ErrMemberNotFound
	}
	if err := s.proposeMemberChange(ctx, &memberChange{Op: opUpdate, Member: memberInfo{ID: id, PeerURLs: peerURLs}}); err != nil {
		return nil, err
	}
	if err := s.node.UpdateMember(ctx, id, addr); err != nil {
		s.undoMemberChange(&memberChange{Op: opUpdate, Member: m})
		return nil, fmt.Errorf("update member %x in raft: %w", id, err)
	}
	return s.members.List(), nil
}

// MemberPromote makes a learner a voter once it has caught up.
func (s *Server) MemberPromote(ctx context.Context, id uint64) ([]*pb.Member, error) {
	m, ok := s.members.Get(id)
	switch {
	case !ok:
		return nil, ErrMemberNotFound
	case !m.IsLearner:
		return nil, ErrMemberNotLearner
	case s.cfg.StrictReconfigCheck && !s.members.enoughStartedAfter(opPromote, id):
		return nil, ErrNotEnoughStarted
	}
	if err := s.node.PromoteMember(ctx, id); err != nil {
		return nil, fmt.Errorf("promote member %x: %w", id, err)
	}
	if err := s.proposeMemberChange(ctx, &memberChange{Op: opPromote, Member: memberInfo{ID: id}}); err != nil {
		return nil, err
	}
	s.log.Info("promoted member", "id", fmt.Sprintf("%x", id))
	return s.members.List(), nil
}

// checkMemberAdd refuses an add that would exceed the learner limit or,
// with the strict check, leave too few started voters for the grown
// cluster's quorum.
func (s *Server) checkMemberAdd(learner bool) error {
	if learner {
		if s.members.learnerCount() >= s.cfg.MaxLearners {
			return ErrTooManyLearners
		}
		return nil
	}
	if s.cfg.StrictReconfigCheck && !s.members.enoughStartedAfter(opAdd, 0) {
		return ErrNotEnoughStarted
	}
	return nil
}

// undoMemberChange reverts the table half of a change whose Raft half
// failed; it is best-effort (logged) because the caller already fails.
func (s *Server) undoMemberChange(c *memberChange) {
	ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
	defer cancel()
	if err := s.proposeMemberChange(ctx, c); err != nil {
		s.log.Warn("could not undo member change", "op", c.Op, "id", fmt.Sprintf("%x", c.Member.ID), "err", err)
	}
}

func peerAddr(peerURLs []string) (string, error) {
	if len(peerURLs) == 0 {
		return "", ErrBadURLs
	}
	addr, err := hostPort(peerURLs[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadURLs, err)
	}
	return addr, nil
}
