package server_test

import (
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent/agenttest"
)

func TestThreeMembersReplicateAndServeFromFollowers(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	f := c.Follower()
	onFollower := c.Client(f)
	for i := range 20 {
		if _, err := onFollower.Put(t.Context(), fmt.Sprintf("k%02d", i), fmt.Sprint(i)); err != nil {
			t.Fatalf("put through follower: %v", err)
		}
	}
	// A linearizable read on another member sees every acknowledged write.
	for i := range c.Members {
		resp, err := c.Client(i).Get(t.Context(), "k", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 20 {
			t.Fatalf("member %d sees %d keys, want 20", i, len(resp.Kvs))
		}
	}
	members, err := onFollower.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 3 {
		t.Fatalf("member list has %d members", len(members.Members))
	}
	for _, m := range members.Members {
		if m.Name == "" || len(m.ClientURLs) != 1 {
			t.Errorf("member %x not published: %+v", m.ID, m)
		}
	}
	c.CheckConverged()
}

// TestFollowerReadsItsOwnWrites: a write answered by a follower has been
// applied by that follower, as in etcd, so a serializable read on it right
// after sees the write.
func TestFollowerReadsItsOwnWrites(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	cli := c.Client(c.Follower())
	for i := range 50 {
		v := fmt.Sprint(i)
		if _, err := cli.Put(t.Context(), "ryw", v); err != nil {
			t.Fatal(err)
		}
		resp, err := cli.Get(t.Context(), "ryw", clientv3.WithSerializable())
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
			t.Fatalf("serializable read after put %s on the same follower saw %v", v, resp.Kvs)
		}
	}
}
