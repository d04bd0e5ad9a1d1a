package server_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/core/server"
)

// TestWatchSurvivesSnapshotInstall: a snapshot install replaces the store
// under open watches (a lagging follower receiving the leader's snapshot).
// The watch hub survives it: its watchers are caught up from the new store
// and get every event they miss, in order; a watcher whose history the
// snapshot no longer holds is cancelled with the compact revision; new
// watches start at the new revision.
func TestWatchSurvivesSnapshotInstall(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted=%v", compact), func(t *testing.T) {
			// donor's database, further ahead, is installed into target.
			donor := agenttest.Start(t, 1, agenttest.Options{})
			target := agenttest.Start(t, 1, agenttest.Options{})
			dcli, tcli := donor.Client(), target.Client()
			srv := target.Members[0].Agent.Server()

			fromNext := tcli.Watch(t.Context(), "snap/", clientv3.WithPrefix())
			fromOne := tcli.Watch(t.Context(), "snap/", clientv3.WithPrefix(), clientv3.WithRev(1))
			oneKey := tcli.Watch(t.Context(), "snap/40", clientv3.WithRev(30))
			waitWatchers(t, srv, 3)

			const n = 50
			var last int64
			for i := range n {
				resp, err := dcli.Put(t.Context(), fmt.Sprintf("snap/%d", i), fmt.Sprint(i))
				if err != nil {
					t.Fatal(err)
				}
				last = resp.Header.Revision
			}
			first := last - n + 1
			const compactAt = 30
			if compact {
				if _, err := dcli.Compact(t.Context(), compactAt); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := server.TakeSnapshot(donor.Members[0].Agent.Server())
			if err != nil {
				t.Fatal(err)
			}
			if err := server.InstallSnapshot(srv, snap); err != nil {
				t.Fatal(err)
			}

			if compact {
				// Both needed revisions from the target's old revision
				// on: history below 30 is gone.
				for name, wch := range map[string]clientv3.WatchChan{"from next": fromNext, "from 1": fromOne} {
					r := recv(t, wch)
					if !r.Canceled || r.CompactRevision != compactAt || !errors.Is(r.Err(), rpctypes.ErrCompacted) {
						t.Fatalf("watch %s after installing a compacted snapshot: %+v (err %v), want a cancel at %d", name, r, r.Err(), compactAt)
					}
				}
			} else {
				for name, wch := range map[string]clientv3.WatchChan{"from next": fromNext, "from 1": fromOne} {
					want := first
					for want <= last {
						r := recv(t, wch)
						if r.Err() != nil {
							t.Fatalf("watch %s: failed (%v) at revision %d", name, r.Err(), want)
						}
						for _, e := range r.Events {
							if e.Kv.ModRevision != want || string(e.Kv.Key) != fmt.Sprintf("snap/%d", want-first) {
								t.Fatalf("watch %s: event %s at %d, want revision %d", name, e.Kv.Key, e.Kv.ModRevision, want)
							}
							want++
						}
					}
				}
			}
			// The single-key watcher from revision 30 (>= the compaction)
			// gets its one event either way.
			r := recv(t, oneKey)
			if r.Err() != nil || len(r.Events) != 1 || string(r.Events[0].Kv.Key) != "snap/40" || r.Events[0].Kv.ModRevision != first+40 {
				t.Fatalf("single-key watch from revision 30: %+v (err %v)", r, r.Err())
			}

			// A new watch starts at the installed revision.
			wch := tcli.Watch(t.Context(), "snap/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
			if r := recv(t, wch); !r.Created || r.Header.Revision != last {
				t.Fatalf("new watch after the install: %+v, want created at revision %d", r, last)
			}
			deadline := time.Now().Add(10 * time.Second)
			for srv.WatchStats().SlowWatchers != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("watchers still catching up: %+v", srv.WatchStats())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// recv returns the next watch response, failing the test on a closed
// channel or after ten seconds.
func recv(t *testing.T, wch clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case r, ok := <-wch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response within 10s")
	}
	return clientv3.WatchResponse{}
}

func waitWatchers(t *testing.T, srv *server.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for srv.WatchStats().Watchers < n {
		if time.Now().After(deadline) {
			t.Fatalf("hub has %d watchers, want %d", srv.WatchStats().Watchers, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
