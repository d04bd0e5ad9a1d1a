package raftnode

import (
	"context"
	"errors"
	"fmt"
)

// Errors callers branch on. Every error a Node returns wraps one of these
// when the cause is one of the listed conditions; test with errors.Is. The
// server maps them to etcd's errors at its API edge (ErrNoLeader to
// "etcdserver: no leader", ErrLeaderChanged to "etcdserver: leader changed",
// ErrTimeout to "etcdserver: request timed out", ErrLearnerNotReady to
// "etcdserver: can only promote a learner member which is in sync with
// leader", and so on).
var (
	// ErrNoLeader: no leader was known for about an election timeout. The
	// request was not replicated.
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrNotLeader: the operation needs the leader and this node is not it
	// (returned by the peer service; Node methods forward instead).
	ErrNotLeader = errors.New("raftnode: not the leader")
	// ErrStopped: the node is closed or raft was shut down (for example
	// after this member was removed). A proposal in flight has an unknown
	// outcome.
	ErrStopped = errors.New("raftnode: stopped")
	// ErrRemoved: this member was removed from the cluster; its raft has
	// stopped (see Node.Removed).
	ErrRemoved = errors.New("raftnode: member removed from the cluster")
	// ErrLeaderChanged: leadership was lost while the request was in flight
	// (a leader whose log store fails to write, as on a full disk, steps
	// down).
	// The outcome is unknown: the entry may still be committed by the next
	// leader. Retry only operations that are safe to apply twice.
	ErrLeaderChanged = errors.New("raftnode: leader changed")
	// ErrTimeout: the caller's deadline passed before the outcome was known.
	// As with ErrLeaderChanged, the proposal may still be applied.
	ErrTimeout = errors.New("raftnode: request timed out")
	// ErrLearnerNotReady: a promotion was refused because the learner's
	// applied index is too far behind the leader's commit index (or the
	// learner could not be asked).
	ErrLearnerNotReady = errors.New("raftnode: learner is not in sync with the leader")
	// ErrUnhealthy: with Config.StrictReconfigCheck, a member change was
	// refused because too few voters are in contact with the leader (see
	// that field).
	ErrUnhealthy = errors.New("raftnode: too few voters in contact with the leader")
	// ErrMemberNotFound: no member with that ID is in the raft configuration.
	ErrMemberNotFound = errors.New("raftnode: member not found")
	// ErrMemberExists: a member with that ID is already in the configuration.
	ErrMemberExists = errors.New("raftnode: member already exists")
	// ErrNotLearner: promotion of a member that is already a voter.
	ErrNotLearner = errors.New("raftnode: member is not a learner")
	// ErrBadTransferee: leadership can only move to a voter other than the
	// current leader.
	ErrBadTransferee = errors.New("raftnode: bad leader transferee")
	// ErrAlreadyBootstrapped: Bootstrap was called on a node that already
	// has raft state. Harmless on restart.
	ErrAlreadyBootstrapped = errors.New("raftnode: already bootstrapped")
	// ErrTooLarge: a payload larger than Config.MaxProposalBytes.
	ErrTooLarge = errors.New("raftnode: proposal too large")
)

// sentinelByCode and codeOf translate sentinels to the short codes carried
// by the peer service, so that a forwarded request fails with the same
// sentinel on the follower as it would have on the leader.
var sentinels = [...]struct {
	code string
	err  error
}{
	{"removed", ErrRemoved},
	{"no-leader", ErrNoLeader},
	{"not-leader", ErrNotLeader},
	{"stopped", ErrStopped},
	{"leader-changed", ErrLeaderChanged},
	{"timeout", ErrTimeout},
	{"learner-not-ready", ErrLearnerNotReady},
	{"unhealthy", ErrUnhealthy},
	{"member-not-found", ErrMemberNotFound},
	{"member-exists", ErrMemberExists},
	{"not-learner", ErrNotLearner},
	{"bad-transferee", ErrBadTransferee},
	{"already-bootstrapped", ErrAlreadyBootstrapped},
	{"too-large", ErrTooLarge},
}

// codeOf returns the wire code of the first sentinel err wraps, or "".
func codeOf(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.code
		}
	}
	return ""
}

// sentinelByCode returns the sentinel for a wire code, or nil.
func sentinelByCode(code string) error {
	for _, s := range sentinels {
		if s.code == code {
			return s.err
		}
	}
	return nil
}

// ctxError reports why ctx ended: a passed deadline wraps ErrTimeout (and
// context.DeadlineExceeded), a cancellation is context.Canceled.
func ctxError(ctx context.Context) error {
	err := context.Cause(ctx)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
