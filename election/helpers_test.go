package election_test

import (
	"testing"
	"time"

	"github.com/concordkv/concord/election"
)

// electionTimeout is etcd's default, which the test clusters keep.
const electionTimeout = time.Second

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
