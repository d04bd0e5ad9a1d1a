package election_test

import (
	"context"
	"testing"
	"time"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// minTTL is the smallest TTL etcd grants with its default election
// timeout, which is electionTimeout.
const (
	minTTL          = 2 * time.Second
	electionTimeout = time.Second
)

func newSession(t testing.TB, cli *clientv3.Client, ttl time.Duration) *session.Session {
	t.Helper()
	s, err := session.New(context.Background(), cli, session.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// recorder collects what an observer sees.
type recorder struct {
	ch   <-chan election.LeaderInfo
	seen []election.LeaderInfo
}

// next returns the next state within limit.
func (r *recorder) next(t *testing.T, limit time.Duration) election.LeaderInfo {
	t.Helper()
	select {
	case li, ok := <-r.ch:
		if !ok {
			t.Fatal("observer channel closed")
		}
		r.seen = append(r.seen, li)
		return li
	case <-time.After(limit):
		t.Fatalf("no leader change within %v (seen %v)", limit, values(r.seen))
		return election.LeaderInfo{}
	}
}

// until reads states until one has the given value.
func (r *recorder) until(t *testing.T, value string, limit time.Duration) election.LeaderInfo {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		li := r.next(t, time.Until(deadline))
		if li.HasLeader() && li.Value == value {
			return li
		}
	}
}

func values(lis []election.LeaderInfo) []string {
	var vs []string
	for _, li := range lis {
		if li.HasLeader() {
			vs = append(vs, li.Value)
		} else {
			vs = append(vs, "<none>")
		}
	}
	return vs
}

// fresh deletes every key under prefix, so that a test starts clean on the
// shared cluster even when run again (-count).
func fresh(t testing.TB, cli *clientv3.Client, prefix string) {
	t.Helper()
	if _, err := cli.Delete(context.Background(), prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}
