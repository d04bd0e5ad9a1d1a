package lock_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session/sessiontest"
)

// TestEtcdctlLockExcludes: `etcdctl lock NAME` (etcd's concurrency.Mutex)
// and lock.Mutex on the same NAME exclude each other, both ways.
func TestEtcdctlLockExcludes(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "lock/etcdctl")
	bin := testcluster.Tool(t, "etcdctl", "ETCDCTL")
	eps := strings.Join(cluster.Endpoints(), ",")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	s := sessiontest.NewSession(t, cli, 10*time.Second)
	const name = "lock/etcdctl"

	t.Run("EtcdctlHolds", func(t *testing.T) {
		cmd := exec.CommandContext(t.Context(), bin, "--endpoints", eps, "lock", name)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n') // the key: it holds the lock
		if err != nil {
			t.Fatalf("etcdctl lock: %v", err)
		}
		key := strings.TrimSpace(line)
		if !strings.HasPrefix(key, name+"/") {
			t.Fatalf("etcdctl printed %q, want a key under %s/", key, name)
		}
		resp, err := cli.Get(t.Context(), key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("etcdctl's key: %v, %v", resp, err)
		}
		etcdctlRev := resp.Kvs[0].CreateRevision

		m := lock.NewMutex(s, name)
		if _, err := m.TryLock(t.Context()); !errors.Is(err, lock.ErrLocked) {
			t.Fatalf("TryLock while etcdctl holds = %v, want ErrLocked", err)
		}
		got := make(chan lock.Token, 1)
		go func() {
			tok, err := m.Lock(t.Context())
			if err != nil {
				t.Error(err)
			}
			got <- tok
		}()
		waitKeys(t, cli, name+"/", 2)
		select {
		case <-got:
			t.Fatal("Lock returned while etcdctl holds the lock")
		case <-time.After(200 * time.Millisecond):
		}
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil { // etcdctl unlocks
			t.Fatal(err)
		}
		select {
		case tok := <-got:
			if int64(tok) <= etcdctlRev {
				t.Fatalf("token %d after etcdctl's %d", tok, etcdctlRev)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Lock did not return after etcdctl unlocked")
		}
		if err := m.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("MutexHolds", func(t *testing.T) {
		m := lock.NewMutex(s, name)
		if _, err := m.Lock(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--endpoints", eps, "lock", name, "echo", "etcdctl-got-it")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		waitKeys(t, cli, name+"/", 2)
		select {
		case err := <-exited:
			t.Fatalf("etcdctl lock finished while the Mutex holds the lock: %v\n%s", err, out.String())
		case <-time.After(300 * time.Millisecond):
		}
		if err := m.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := <-exited; err != nil {
			t.Fatalf("etcdctl lock: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "etcdctl-got-it") {
			t.Fatalf("etcdctl lock output %q", out.String())
		}
	})
}
