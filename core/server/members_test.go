package server_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent"
	"github.com/concordkv/concord/agent/agenttest"
)

func TestMemberAddLimits(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	// One voter, started: adding a second voter that has not started would
	// leave the cluster without a quorum until it does.
	if _, err := cli.MemberAdd(t.Context(), []string{"http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrMemberNotEnoughStarted) {
		t.Fatalf("voter add with strict reconfig check: %v", err)
	}
	l, err := cli.MemberAddAsLearner(t.Context(), []string{"http://127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.MemberAddAsLearner(t.Context(), []string{"http://127.0.0.1:3"}); !errors.Is(err, rpctypes.ErrTooManyLearners) {
		t.Fatalf("second learner with max-learners 1: %v", err)
	}
	if _, err := cli.MemberAddAsLearner(t.Context(), []string{"http://127.0.0.1:2"}); !errors.Is(err, rpctypes.ErrTooManyLearners) && !errors.Is(err, rpctypes.ErrPeerURLExist) {
		t.Fatalf("learner with a taken peer URL: %v", err)
	}
	list, err := cli.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Members) != 2 {
		t.Fatalf("member list = %v", list.Members)
	}
	var learner bool
	for _, m := range list.Members {
		if m.ID == l.Member.ID {
			learner = m.IsLearner && m.Name == ""
		}
	}
	if !learner {
		t.Fatalf("added learner not listed as an unstarted learner: %v", list.Members)
	}
	if _, err := cli.MemberRemove(t.Context(), l.Member.ID); err != nil {
		t.Fatalf("remove the learner: %v", err)
	}
}

func TestAutoCompactionPeriodic(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{Configure: func(_ int, cfg *agent.Config) {
		cfg.Store.AutoCompactionMode = agent.CompactionPeriodic
		cfg.Store.AutoCompactionRetention = "200ms"
	}})
	cli := c.Client()
	var first int64
	for i := range 5 {
		p, err := cli.Put(t.Context(), "k", fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = p.Header.Revision
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := cli.Get(t.Context(), "k", clientv3.WithRev(first))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("history at revision %d not compacted automatically: %v", first, err)
		}
		// Writes keep the revisions moving so that samples differ.
		cli.Put(t.Context(), "tick", "x")
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMemberChangesNeedVotersInContact: once a voter has been silent for
// etcd's health interval (5 s), the strict check refuses to add a member
// and to remove a voter that is still up ("etcdserver: unhealthy
// cluster"), changing nothing, but removes the silent one.
func TestMemberChangesNeedVotersInContact(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	down := c.Follower()
	var up int
	for i := range c.Members {
		if i != down && i != c.Leader() {
			up = i
		}
	}
	cli := c.Client(c.Leader(), up)
	ids := map[string]uint64{}
	list, err := cli.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Members {
		ids[m.Name] = m.ID
	}
	c.Stop(down)
	time.Sleep(5*time.Second + 500*time.Millisecond)

	if _, err := cli.MemberAddAsLearner(t.Context(), []string{"http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrUnhealthy) {
		t.Fatalf("learner add with a voter down: %v, want %v", err, rpctypes.ErrUnhealthy)
	}
	if _, err := cli.MemberRemove(t.Context(), ids[c.Members[up].Name]); !errors.Is(err, rpctypes.ErrUnhealthy) {
		t.Fatalf("removing a running voter with another down: %v, want %v", err, rpctypes.ErrUnhealthy)
	}
	if after, err := cli.MemberList(t.Context()); err != nil || len(after.Members) != 3 {
		t.Fatalf("members after refused changes: %v, %v; want the 3 unchanged", after, err)
	}
	if _, err := cli.MemberRemove(t.Context(), ids[c.Members[down].Name]); err != nil {
		t.Fatalf("removing the member that is down: %v", err)
	}
	if _, err := cli.MemberAddAsLearner(t.Context(), []string{"http://127.0.0.1:1"}); err != nil {
		t.Fatalf("learner add with every remaining voter up: %v", err)
	}
}
