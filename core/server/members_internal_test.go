package server

import "testing"

// TestEnoughStartedAfter checks the started-members rule of the strict
// reconfiguration check against etcd's: an added voter is not started yet,
// a promoted learner counts as started, a removed voter's start no longer
// counts, and learners never matter.
func TestEnoughStartedAfter(t *testing.T) {
	voter := func(id uint64, started bool) memberInfo {
		m := memberInfo{ID: id}
		if started {
			m.Name = "m"
		}
		return m
	}
	learner := func(id uint64, started bool) memberInfo {
		m := voter(id, started)
		m.IsLearner = true
		return m
	}
	tests := []struct {
		name    string
		members []memberInfo
		op      string
		id      uint64
		want    bool
	}{
		{"add to one started voter", []memberInfo{voter(1, true)}, opAdd, 0, false},
		{"add to two started voters", []memberInfo{voter(1, true), voter(2, true)}, opAdd, 0, true},
		{"add to three voters, one not started", []memberInfo{voter(1, true), voter(2, true), voter(3, false)}, opAdd, 0, false},
		{"add to three started voters", []memberInfo{voter(1, true), voter(2, true), voter(3, true)}, opAdd, 0, true},
		{"remove a started voter of three", []memberInfo{voter(1, true), voter(2, true), voter(3, true)}, opRemove, 3, true},
		{"remove a started voter, another not started", []memberInfo{voter(1, true), voter(2, true), voter(3, false)}, opRemove, 2, false},
		{"remove the voter not started", []memberInfo{voter(1, true), voter(2, true), voter(3, false)}, opRemove, 3, true},
		{"remove a learner", []memberInfo{voter(1, false), learner(2, false)}, opRemove, 2, true},
		{"promote with one started voter", []memberInfo{voter(1, true), learner(2, false)}, opPromote, 2, true},
		{"promote with one of three voters started", []memberInfo{voter(1, true), voter(2, false), voter(3, false), learner(4, true)}, opPromote, 4, false},
		{"promote with two of three voters started", []memberInfo{voter(1, true), voter(2, true), voter(3, false), learner(4, false)}, opPromote, 4, true},
		{"learners do not count", []memberInfo{voter(1, true), learner(2, true)}, opAdd, 0, false},
	}
	for _, tc := range tests {
		tab := newMemberTable()
		tab.reset(1, tc.members)
		if got := tab.enoughStartedAfter(tc.op, tc.id); got != tc.want {
			t.Errorf("%s: enoughStartedAfter(%s, %d) = %v, want %v", tc.name, tc.op, tc.id, got, tc.want)
		}
	}
}
