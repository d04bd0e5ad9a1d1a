package etcdapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/internal/testcluster"
)

// etcdctlWatch runs `etcdctl --endpoints ADDR args...` against member i
// and returns its stdout lines; it returns once the member's hub holds the
// new watcher. The process is killed when the test ends.
func etcdctlWatch(t *testing.T, c *agenttest.Cluster, i int, args ...string) <-chan string {
	t.Helper()
	srv := c.Members[i].Agent.Server()
	before := srv.WatchStats().Watchers
	cmd := exec.Command(testcluster.Tool(t, "etcdctl", "ETCDCTL"), append([]string{"--endpoints", c.Members[i].ClientAddr}, args...)...)
	// etcdctl reads ETCDCTL_* from the environment: keep only the rest.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("etcdctl stderr: %s", stderr.String())
		}
	})
	deadline := time.Now().Add(watchWait)
	for srv.WatchStats().Watchers == before {
		if time.Now().After(deadline) {
			t.Fatalf("etcdctl %v never opened its watch; stderr: %s", args, stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return lines
}

func readLines(t *testing.T, lines <-chan string, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(watchWait)
	for len(got) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("etcdctl exited after %q", got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("timed out after %q", got)
		}
	}
	return got
}

// TestEtcdctlWatch drives the real etcdctl against an in-process cluster:
// the tutorial's `etcdctl watch mykey`, a historical prefix watch on a
// follower, and JSON output.
func TestEtcdctlWatch(t *testing.T) {
	testcluster.Tool(t, "etcdctl", "ETCDCTL")
	c := agenttest.Start(t, 3, steadyOptions())
	leader, follower := c.Leader(), c.Follower()
	cli := c.Client(leader)

	t.Run("PutAndDelete", func(t *testing.T) {
		lines := etcdctlWatch(t, c, leader, "watch", "mykey")
		mustPut(t, cli, "mykey", "v2")
		if _, err := cli.Delete(t.Context(), "mykey"); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(readLines(t, lines, 5), "\n") + "\n"
		if want := "PUT\nmykey\nv2\nDELETE\nmykey\n"; got != want {
			t.Fatalf("etcdctl watch printed %q, want %q", got, want)
		}
	})

	t.Run("PrefixFromRevisionOneOnFollower", func(t *testing.T) {
		want := []string{}
		for _, kv := range [][2]string{{"w1", "a"}, {"w2", "b"}, {"w/3", "c"}, {"w1", "d"}} {
			mustPut(t, cli, kv[0], kv[1])
			want = append(want, "PUT", kv[0], kv[1])
		}
		mustPut(t, cli, "other", "not watched")
		lines := etcdctlWatch(t, c, follower, "watch", "--prefix", "w", "--rev=1")
		if got := readLines(t, lines, len(want)); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("etcdctl watch --prefix w --rev=1 on a follower printed\n%q\nwant\n%q", got, want)
		}
	})

	t.Run("JSON", func(t *testing.T) {
		lines := etcdctlWatch(t, c, follower, "watch", "-w", "json", "jsonkey")
		rev := mustPut(t, cli, "jsonkey", "jv")
		var resp struct {
			Header struct {
				ClusterID uint64 `json:"cluster_id"`
				MemberID  uint64 `json:"member_id"`
				Revision  int64  `json:"revision"`
				RaftTerm  uint64 `json:"raft_term"`
			}
			Events []struct {
				Kv struct {
					Key         []byte `json:"key"`
					Value       []byte `json:"value"`
					ModRevision int64  `json:"mod_revision"`
				} `json:"kv"`
			}
			Canceled bool
			Created  bool
		}
		line := readLines(t, lines, 1)[0]
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatalf("etcdctl -w json printed %q: %v", line, err)
		}
		if resp.Header.ClusterID == 0 || resp.Header.MemberID != c.Members[follower].Agent.Server().ID() ||
			resp.Header.Revision != rev || resp.Header.RaftTerm == 0 {
			t.Fatalf("header %+v, want this follower's member id and revision %d", resp.Header, rev)
		}
		if len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != "jsonkey" || string(resp.Events[0].Kv.Value) != "jv" ||
			resp.Events[0].Kv.ModRevision != rev {
			t.Fatalf("events %+v in %q", resp.Events, line)
		}
	})
}
