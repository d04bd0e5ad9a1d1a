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
