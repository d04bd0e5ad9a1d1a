package raftnode

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Servers returns the latest raft configuration (it may not be committed
// yet), in configuration order.
func (n *Node) Servers() ([]Server, error) {
	conf, _, err := n.configuration()
	if err != nil {
		return nil, err
	}
	out := make([]Server, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		id, err := memberID(s.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, Server{ID: id, Addr: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

func (n *Node) configuration() (raft.Configuration, uint64, error) {
	fut := n.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return raft.Configuration{}, 0, fmt.Errorf("raft configuration: %w", mapLeaderErr(err))
	}
	return fut.Configuration(), fut.Index(), nil
}

// AddMember adds a member at the peer address addr: a voter, or a learner
// (raft non-voter) that receives the log but does not vote until promoted.
// On a follower the change is forwarded to the leader. Raft applies one
// configuration change at a time; a change racing another fails and may be
// retried.
func (n *Node) AddMember(ctx context.Context, id uint64, addr string, learner bool) error {
	return n.change(ctx, memberChange{op: opAdd, id: id, addr: addr, learner: learner, strict: n.cfg.StrictReconfigCheck})
}

// CheckAddMember asks the leader whether AddMember with the same arguments
// would be refused now (ErrMemberExists, ErrUnhealthy), changing nothing:
// a caller that records the member elsewhere first checks with it.
func (n *Node) CheckAddMember(ctx context.Context, id uint64, addr string, learner bool) error {
	return n.change(ctx, memberChange{op: opAdd, id: id, addr: addr, learner: learner, strict: n.cfg.StrictReconfigCheck, dryRun: true})
}

// PromoteMember turns a learner into a voter once it has caught up: its
// applied index must be at least 90% of the leader's commit index (etcd's
// rule), else ErrLearnerNotReady. ErrNotLearner if it already votes.
func (n *Node) PromoteMember(ctx context.Context, id uint64) error {
	return n.change(ctx, memberChange{op: opPromote, id: id})
}

// RemoveMember removes a member (voter or learner). The removed member
// finds out within a few election timeouts, stops its raft and closes its
// Removed channel.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	return n.change(ctx, memberChange{op: opRemove, id: id, strict: n.cfg.StrictReconfigCheck})
}

// UpdateMember changes a member's peer address, keeping its suffrage.
// ErrMemberNotFound if it is not in the configuration.
func (n *Node) UpdateMember(ctx context.Context, id uint64, addr string) error {
	return n.change(ctx, memberChange{op: opUpdate, id: id, addr: addr})
}

// TransferLeadership moves leadership to the voter id and waits until this
// node sees it lead (or two election timeouts pass: ErrTimeout). Transferring to the
// current leader is a no-op; a learner or unknown member is
// ErrBadTransferee / ErrMemberNotFound.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	if err := n.change(ctx, memberChange{op: opTransfer, id: to}); err != nil {
		return err
	}
	wait := 2 * n.cfg.ElectionTimeout
	deadline := time.Now().Add(wait)
	for {
		if _, id := n.raft.LeaderWithID(); id == serverID(to) {
			return nil
		}
		if err := n.pause(ctx, deadline); err != nil {
			if errors.Is(err, ErrNoLeader) {
				return fmt.Errorf("transfer leadership to %x: not observed within %v: %w", to, wait, ErrTimeout)
			}
			return err
		}
	}
}

// change runs ch on the leader: here, or forwarded over the peer port.
func (n *Node) change(ctx context.Context, ch memberChange) error {
	deadline := time.Now().Add(n.cfg.ElectionTimeout)
	for {
		if err := n.checkRunning(); err != nil {
			return fmt.Errorf("%s member %x: %w", ch.op, ch.id, err)
		}
		var err error
		if n.raft.State() == raft.Leader {
			err = n.changeOnLeader(ctx, ch)
		} else if addr, id := n.raft.LeaderWithID(); id != "" && addr != "" {
			err = n.forwardChange(ctx, string(addr), ch, deadline)
		} else {
			err = ErrNoLeader
		}
		if err == nil || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)) {
			if err != nil {
				return fmt.Errorf("%s member %x: %w", ch.op, ch.id, err)
			}
			return nil
		}
		if perr := n.pause(ctx, deadline); perr != nil {
			return fmt.Errorf("%s member %x: %w", ch.op, ch.id, perr)
		}
	}
}

func (n *Node) forwardChange(ctx context.Context, addr string, ch memberChange, deadline time.Time) error {
	cc, err := n.readyConn(ctx, addr, n.leaderRecheck(deadline))
	if err != nil {
		return err // not sent: ErrNoLeader makes change look again
	}
	if err := (peerClient{cc}).changeMember(ctx, ch); err != nil {
		return fmt.Errorf("forwarded to leader %s: %w", addr, err)
	}
	return nil
}

// changeOnLeader validates ch against the current configuration and
// applies it. It fails with ErrNotLeader on a follower.
func (n *Node) changeOnLeader(ctx context.Context, ch memberChange) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	conf, confIndex, err := n.configuration()
	if err != nil {
		return err
	}
	sid := serverID(ch.id)
	var cur *raft.Server
	for i := range conf.Servers {
		if conf.Servers[i].ID == sid {
			cur = &conf.Servers[i]
		}
	}
	timeout := n.cfg.ElectionTimeout
	var start func() raft.Future // makes the change, once validated
	switch ch.op {
	case opAdd:
		if cur != nil {
			return ErrMemberExists
		}
		if ch.addr == "" {
			return errors.New("no peer address")
		}
		start = func() raft.Future {
			if ch.learner {
				return n.raft.AddNonvoter(sid, raft.ServerAddress(ch.addr), confIndex, timeout)
			}
			return n.raft.AddVoter(sid, raft.ServerAddress(ch.addr), confIndex, timeout)
		}
	case opPromote:
		if cur == nil {
			return ErrMemberNotFound
		}
		if cur.Suffrage == raft.Voter {
			return ErrNotLearner
		}
		if err := n.checkLearnerReady(ctx, string(cur.Address)); err != nil {
			return err
		}
		start = func() raft.Future { return n.raft.AddVoter(sid, cur.Address, confIndex, timeout) }
	case opRemove:
		if cur == nil {
			return ErrMemberNotFound
		}
		start = func() raft.Future { return n.raft.RemoveServer(sid, confIndex, timeout) }
	case opUpdate:
		if cur == nil {
			return ErrMemberNotFound
		}
		if ch.addr == "" {
			return errors.New("no peer address")
		}
		// Raft replaces the address of a server it already has.
		start = func() raft.Future {
			if cur.Suffrage == raft.Voter {
				return n.raft.AddVoter(sid, raft.ServerAddress(ch.addr), confIndex, timeout)
			}
			return n.raft.AddNonvoter(sid, raft.ServerAddress(ch.addr), confIndex, timeout)
		}
	case opTransfer:
		if cur == nil {
			return ErrMemberNotFound
		}
		if cur.Suffrage != raft.Voter {
			return ErrBadTransferee
		}
		if sid == serverID(n.cfg.ID) {
			return nil // already leads
		}
		start = func() raft.Future { return n.raft.LeadershipTransferToServer(sid, cur.Address) }
	default:
		return fmt.Errorf("unknown membership operation %d", uint64(ch.op))
	}
	if ch.strict {
		if err := n.checkContact(conf, ch); err != nil {
			return err
		}
	}
	if ch.dryRun {
		return nil
	}
	if err := n.waitFuture(ctx, start()); err != nil {
		return mapLeaderErr(err)
	}
	return nil
}

// defaultContactWindow is how recently a voter must have answered this
// leader to count as in contact for the strict check: etcd's health
// interval.
const defaultContactWindow = 5 * time.Second

// checkContact is Config.StrictReconfigCheck's rule for ch against the
// configuration conf, on the leader. An add needs every voter in contact;
// removing a voter that is in contact needs the others in contact to make
// a quorum of the smaller cluster. Removing a member out of contact, or a
// learner, needs nothing: it is not part of any quorum that works now.
func (n *Node) checkContact(conf raft.Configuration, ch memberChange) error {
	self := serverID(n.cfg.ID)
	window := cmp.Or(n.cfg.contactWindow, defaultContactWindow)
	since := time.Now().Add(-window)
	inContact := func(id raft.ServerID) bool { return id == self || n.contacts.lastAnswer(id).After(since) }
	voters, active := 0, 0
	target := serverID(ch.id)
	targetVotes := false
	for _, s := range conf.Servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if inContact(s.ID) {
			active++
		}
		targetVotes = targetVotes || s.ID == target
	}
	switch ch.op {
	case opAdd:
		if active < voters {
			return fmt.Errorf("%w: %d of %d voters answered within %v", ErrUnhealthy, active, voters, window)
		}
	case opRemove:
		if !targetVotes || !inContact(target) {
			return nil
		}
		if active-1 < (voters-1)/2+1 {
			return fmt.Errorf("%w: without it, %d of %d voters would be in contact", ErrUnhealthy, active-1, voters-1)
		}
	}
	return nil
}

// learnerReadyPercent is etcd's threshold: a learner may be promoted once
// its progress is at least this share of the leader's.
const learnerReadyPercent = 90

// checkLearnerReady asks the learner at addr for its applied index and
// compares it with this leader's commit index.
func (n *Node) checkLearnerReady(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ElectionTimeout)
	defer cancel()
	cc, err := n.readyConn(ctx, addr, time.Now().Add(n.cfg.ElectionTimeout))
	if err != nil {
		// Not %w: the cause must not read as "no leader" to change's retry.
		return fmt.Errorf("%w: cannot reach learner %s: %v", ErrLearnerNotReady, addr, err)
	}
	applied, err := peerClient{cc}.appliedIndex(ctx)
	if err != nil {
		return fmt.Errorf("%w: ask learner %s for its progress: %w", ErrLearnerNotReady, addr, err)
	}
	commit := n.raft.CommitIndex()
	if applied*100 < commit*learnerReadyPercent {
		return fmt.Errorf("%w: learner applied %d, leader committed %d", ErrLearnerNotReady, applied, commit)
	}
	return nil
}

func inConfiguration(conf raft.Configuration, id raft.ServerID) bool {
	for _, s := range conf.Servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

// Removed is closed when this member finds out that it was removed from
// the cluster. Its raft has then stopped and requests fail with
// ErrRemoved; the caller should Close the node (etcd exits with "the
// member has been permanently removed from the cluster").
func (n *Node) Removed() <-chan struct{} { return n.removed }

// watchRemoval notices this member's removal. hashicorp/raft shuts down a
// leader that removes itself, but a removed follower is never told: the
// leader just stops replicating to it. So once per election timeout this
// checks the latest configuration this member has, and while it has no
// leader, asks the other members' leader whether it is still a member.
// Its own configuration convinces it only after it has seen itself in an
// earlier one, so a joining member catching up through older
// configurations does not conclude it was removed; the leader's answer is
// authoritative (a member with no configuration at all has not joined yet
// and does not ask).
func (n *Node) watchRemoval() {
	tick := time.NewTicker(n.cfg.ElectionTimeout)
	defer tick.Stop()
	self := serverID(n.cfg.ID)
	var seenSelfAt uint64 // latest configuration index that listed this member
	leaderless := 0
	for first := true; ; first = false {
		if !first {
			select {
			case <-n.stopping:
				return
			case <-tick.C:
			}
		}
		if n.raft.State() == raft.Shutdown {
			select {
			case <-n.stopping: // Close is shutting raft down
			default:
				n.markRemoved("raft shut down after this member removed itself")
			}
			return
		}
		conf, index, err := n.configuration()
		if err != nil {
			continue
		}
		if inConfiguration(conf, self) {
			seenSelfAt = max(seenSelfAt, index)
		} else if seenSelfAt > 0 && index > seenSelfAt {
			n.markRemoved(fmt.Sprintf("configuration at index %d no longer lists this member", index))
			return
		}
		// A member with no configuration has not joined yet: nobody can
		// have removed it.
		if _, id := n.raft.LeaderWithID(); id != "" || len(conf.Servers) == 0 {
			leaderless = 0
			continue
		}
		if leaderless++; leaderless < 2 {
			continue
		}
		if n.leaderSaysRemoved(conf) {
			n.markRemoved("the leader's configuration no longer lists this member")
			return
		}
	}
}

// leaderSaysRemoved asks the other members of conf; only the leader
// answers, and its latest configuration is authoritative.
func (n *Node) leaderSaysRemoved(conf raft.Configuration) bool {
	for _, s := range conf.Servers {
		if s.ID == serverID(n.cfg.ID) {
			continue
		}
		ctx, cancel := context.WithTimeout(n.life, n.cfg.ElectionTimeout/2)
		member, err := n.askIsMember(ctx, string(s.Address))
		cancel()
		if err == nil {
			return !member
		}
	}
	return false
}

func (n *Node) askIsMember(ctx context.Context, addr string) (bool, error) {
	deadline, _ := ctx.Deadline()
	cc, err := n.readyConn(ctx, addr, deadline)
	if err != nil {
		return false, err
	}
	return peerClient{cc}.isMember(ctx, n.cfg.ID)
}

func (n *Node) markRemoved(why string) {
	n.logger.Warn("this member was removed from the cluster; stopping raft", "reason", why)
	n.removedOnce.Do(func() { close(n.removed) })
	if err := n.shutdownRaft(); err != nil {
		n.logger.Warn("shut down raft after removal", "error", err)
	}
}

// checkRunning returns ErrStopped or ErrRemoved when requests can no
// longer be served.
func (n *Node) checkRunning() error {
	select {
	case <-n.stopping:
		return ErrStopped
	default:
	}
	select {
	case <-n.removed:
		return ErrRemoved
	default:
	}
	if n.raft.State() == raft.Shutdown {
		return ErrStopped
	}
	return nil
}
