package election_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
	"github.com/concordkv/concord/session/sessiontest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func waitCandidates(t *testing.T, cli *clientv3.Client, name string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := cli.Get(t.Context(), name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d candidates, want %d", resp.Count, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCampaignProclaimResign(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "election/basic")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "election/basic"
	sA, sB := sessiontest.NewSession(t, cli, 10*time.Second), sessiontest.NewSession(t, cli, 10*time.Second)
	eA, eB := election.New(sA, name), election.New(sB, name)

	if _, err := eA.Leader(t.Context()); !errors.Is(err, election.ErrNoLeader) {
		t.Fatalf("Leader of an empty election = %v, want ErrNoLeader", err)
	}
	lA, err := eA.Campaign(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%s/%x", name, int64(sA.Lease())); lA.Key() != want || lA.Value() != "a" || lA.Token() <= 0 {
		t.Fatalf("leadership key %q value %q token %d; want key %q value a", lA.Key(), lA.Value(), lA.Token(), want)
	}
	if h := lA.Header(); h == nil || h.Revision != int64(lA.Token()) {
		t.Fatalf("leadership header %v, want revision %d (an uncontested win is the key's creation)", h, lA.Token())
	}
	li, err := election.Leader(t.Context(), cli, name)
	if err != nil || li.Value != "a" || li.Token != lA.Token() || li.Lease != sA.Lease() || li.Key != lA.Key() {
		t.Fatalf("Leader = %+v, %v", li, err)
	}
	if _, err := eA.Campaign(t.Context(), "again"); !errors.Is(err, election.ErrCampaigning) {
		t.Fatalf("second Campaign while leading = %v, want ErrCampaigning", err)
	}

	elected := make(chan *election.Leadership, 1)
	go func() {
		l, err := eB.Campaign(t.Context(), "b")
		if err != nil {
			t.Error(err)
		}
		elected <- l
	}()
	waitCandidates(t, cli, name, 2)

	if err := lA.Proclaim(t.Context(), "a2"); err != nil {
		t.Fatal(err)
	}
	if li, err := eB.Leader(t.Context()); err != nil || li.Value != "a2" {
		t.Fatalf("Leader after Proclaim = %+v, %v", li, err)
	}
	staleLeader := lA.IsLeader()
	if err := lA.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	var lB *election.Leadership
	select {
	case lB = <-elected:
	case <-time.After(5 * time.Second):
		t.Fatal("B not elected after A resigned")
	}
	if lB == nil || lB.Token() <= lA.Token() {
		t.Fatalf("B elected with token %v after A's %d", lB, lA.Token())
	}
	select {
	case <-lA.Done():
	default:
		t.Error("A's Done open after Resign")
	}
	if err := lA.Proclaim(t.Context(), "a3"); !errors.Is(err, election.ErrNotLeader) {
		t.Errorf("Proclaim after Resign = %v, want ErrNotLeader", err)
	}
	if !errors.Is(lA.Err(), election.ErrNotLeader) {
		t.Errorf("Err after Resign = %v, want ErrNotLeader", lA.Err())
	}
	if err := lA.Resign(t.Context()); !errors.Is(err, election.ErrNotLeader) {
		t.Errorf("second Resign = %v, want ErrNotLeader", err)
	}
	if resp, err := cli.Txn(t.Context()).If(staleLeader).Then(clientv3.OpPut("election/basic-data", "x")).Commit(); err != nil || resp.Succeeded {
		t.Errorf("write fenced on a resigned leadership: succeeded=%v err=%v", resp != nil && resp.Succeeded, err)
	}
	if resp, err := cli.Txn(t.Context()).If(lB.IsLeader()).Then(clientv3.OpPut("election/basic-data", "x")).Commit(); err != nil || !resp.Succeeded {
		t.Errorf("write fenced on the leadership: %v", err)
	}

	// A campaigns again behind B and gives up: its candidacy goes.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := eA.Campaign(ctx, "a-again"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Campaign behind a leader with a deadline = %v", err)
	}
	waitCandidates(t, cli, name, 1)
	if err := lB.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestObserveEveryChange: leaders that come and go quickly, each
// proclaiming twice: observers see every leader and value, in order.
func TestObserveEveryChange(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "election/observe")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name, candidates = "election/observe", 5
	obs := &recorder{ch: election.Observe(t.Context(), cli, name)}
	if li := obs.next(t, 5*time.Second); li.HasLeader() {
		t.Fatalf("first state = %+v, want no leader", li)
	}

	go0 := make(chan struct{})
	results := make(chan error, candidates)
	for i := range candidates {
		s := sessiontest.NewSession(t, cli, 10*time.Second)
		go func() {
			results <- func() error {
				l, err := election.New(s, name).Campaign(t.Context(), fmt.Sprintf("c%d", i))
				if err != nil {
					return err
				}
				if i == 0 {
					<-go0 // until everyone has queued
				}
				for j := 1; j <= 2; j++ {
					if err := l.Proclaim(t.Context(), fmt.Sprintf("c%d-%d", i, j)); err != nil {
						return err
					}
				}
				return l.Resign(t.Context())
			}()
		}()
		waitCandidates(t, cli, name, int64(i+1))
	}
	close(go0)
	var want []string
	for i := range candidates {
		want = append(want, fmt.Sprintf("c%d", i), fmt.Sprintf("c%d-1", i), fmt.Sprintf("c%d-2", i))
	}
	want = append(want, "<none>")
	for range want {
		obs.next(t, 10*time.Second)
	}
	for range candidates {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if got := values(obs.seen[1:]); !slices.Equal(got, want) {
		t.Fatalf("observed %v\nwant     %v", got, want)
	}
	for i := 1; i < len(obs.seen); i++ {
		if obs.seen[i].Revision <= obs.seen[i-1].Revision {
			t.Fatalf("revision %d after %d", obs.seen[i].Revision, obs.seen[i-1].Revision)
		}
	}
	// A late observer starts from the current state.
	late := &recorder{ch: election.Observe(t.Context(), cli, name)}
	if li := late.next(t, 5*time.Second); li.HasLeader() {
		t.Fatalf("late observer's first state = %+v, want no leader", li)
	}
}

// TestResume: a leader restarted with its lease takes its leadership back
// with the same token; observers see no change, the next candidate keeps
// waiting.
func TestResume(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "election/resume")
	const name = "election/resume"
	admin := sessiontest.Client(t, cluster.Endpoints()...)
	obs := &recorder{ch: election.Observe(t.Context(), admin, name)}
	obs.next(t, 5*time.Second) // no leader

	cli1 := sessiontest.Client(t, cluster.Endpoints()...)
	s1 := sessiontest.NewSession(t, cli1, 10*time.Second)
	l1, err := election.New(s1, name).Campaign(t.Context(), "first life")
	if err != nil {
		t.Fatal(err)
	}
	obs.until(t, "first life", 5*time.Second)
	waiting := make(chan error, 1)
	go func() {
		_, err := election.New(sessiontest.NewSession(t, admin, 10*time.Second), name).Campaign(t.Context(), "next")
		waiting <- err
	}()
	waitCandidates(t, admin, name, 2)

	lease := s1.Lease()
	s1.Orphan() // the process dies; its lease outlives it for up to 10s
	cli1.Close()

	cli2 := sessiontest.Client(t, cluster.Endpoints()...)
	s2, err := session.New(t.Context(), cli2, session.WithLease(lease))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close(context.Background()) })
	l2, err := election.New(s2, name).Resume(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l2.Token() != l1.Token() || l2.Value() != "first life" || l2.Err() != nil {
		t.Fatalf("resumed token %d value %q err %v; want token %d", l2.Token(), l2.Value(), l2.Err(), l1.Token())
	}
	if err := l2.Proclaim(t.Context(), "second life"); err != nil {
		t.Fatal(err)
	}
	if li := obs.next(t, 5*time.Second); li.Value != "second life" || li.Token != l1.Token() {
		t.Fatalf("observer saw %+v after the resumed leader proclaimed", li)
	}
	select {
	case err := <-waiting:
		t.Fatalf("the next candidate's Campaign returned while the leader was resumed: %v", err)
	default:
	}
	if err := l2.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	if _, err := election.New(s2, name).Resume(t.Context()); !errors.Is(err, election.ErrNoCandidacy) {
		t.Fatalf("Resume after Resign = %v, want ErrNoCandidacy", err)
	}
}

func TestEmptyName(t *testing.T) {
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	if _, err := election.New(sessiontest.NewSession(t, cli, 10*time.Second), "").Campaign(t.Context(), "v"); !errors.Is(err, election.ErrEmptyName) {
		t.Fatalf("Campaign with an empty name = %v, want ErrEmptyName", err)
	}
}

// tokens of a leadership are lock tokens: the type is shared.
var _ lock.Token = election.LeaderInfo{}.Token

// TestLeaderInfoKeyValue: the leader's key-value as of the state's
// revision, and, once that history is compacted, one made from the state
// alone.
func TestLeaderInfoKeyValue(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "election/kv")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	const name = "election/kv"
	l, err := election.New(sessiontest.NewSession(t, cli, 10*time.Second), name).Campaign(t.Context(), "first")
	if err != nil {
		t.Fatal(err)
	}
	li, err := election.Leader(t.Context(), cli, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Proclaim(t.Context(), "second"); err != nil {
		t.Fatal(err)
	}
	hdr, kv, err := li.KeyValue(t.Context(), cli)
	if err != nil || string(kv.Value) != "first" || kv.CreateRevision != int64(l.Token()) || kv.ModRevision != kv.CreateRevision || kv.Version != 1 || hdr.Revision < li.Revision {
		t.Fatalf("KeyValue at the state's revision = %v, %v, %v", hdr, kv, err)
	}
	now, err := cli.Put(t.Context(), name+"-other", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(t.Context(), now.Header.Revision); err != nil {
		t.Fatal(err)
	}
	hdr, kv, err = li.KeyValue(t.Context(), cli)
	if err != nil || string(kv.Value) != "first" || kv.CreateRevision != int64(l.Token()) || kv.ModRevision != 0 || hdr.Revision < now.Header.Revision {
		t.Fatalf("KeyValue after compaction = %v, %v, %v; want the state's own, with a current header", hdr, kv, err)
	}
}
