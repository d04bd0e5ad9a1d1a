package concurrencyapi_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/internal/testcluster"
)

// stubs are generated gRPC clients of one member's Lock and Election
// services: what a jetcd or any non-Go client speaks, not clientv3.
type stubs struct {
	lock     v3lockpb.LockClient
	election epb.ElectionClient
}

func dialStubs(t *testing.T, addr string) stubs {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return stubs{lock: v3lockpb.NewLockClient(conn), election: epb.NewElectionClient(conn)}
}

// memberStubs returns the stubs of every member of c.
func memberStubs(t *testing.T, c *agenttest.Cluster) []stubs {
	var out []stubs
	for _, m := range c.Members {
		out = append(out, dialStubs(t, m.ClientAddr))
	}
	return out
}

func grant(t *testing.T, cli *clientv3.Client, ttl int64) int64 {
	t.Helper()
	resp, err := cli.Grant(t.Context(), ttl)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	return int64(resp.ID)
}

// createRev returns key's create revision, 0 if it does not exist.
func createRev(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].CreateRevision
}

// wantStatus fails unless err is a gRPC status with message msg.
func wantStatus(t *testing.T, what string, err error, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Message() != msg {
		t.Fatalf("%s: error %v, want status %q", what, err, msg)
	}
}

// async runs f on a goroutine the test waits for; the result arrives on
// the returned channel.
func async[T any](t *testing.T, f func() T) <-chan T {
	ch := make(chan T, 1)
	var wg sync.WaitGroup
	wg.Go(func() { ch <- f() })
	t.Cleanup(wg.Wait)
	return ch
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notYet fails if ch delivers within d: a call that must still be waiting.
func notYet[T any](t *testing.T, what string, ch <-chan T, d time.Duration) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned early: %v", what, v)
	case <-time.After(d):
	}
}

func recv[T any](t *testing.T, what string, ch <-chan T, d time.Duration) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing after %v", what, d)
	}
	var zero T
	return zero
}

// etcdctlProc is a running etcdctl process whose stdout the test reads.
type etcdctlProc struct {
	cmd    *exec.Cmd
	out    *lineBuffer
	exited chan struct{}
}

// startEtcdctl starts `etcdctl --endpoints addr args...`; it is killed at
// the end of the test if still running.
func startEtcdctl(t *testing.T, addr string, args ...string) *etcdctlProc {
	t.Helper()
	cmd := exec.Command(testcluster.Tool(t, "etcdctl", "ETCDCTL"), append([]string{"--endpoints", addr}, args...)...)
	p := &etcdctlProc{cmd: cmd, out: &lineBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcdctl: %v", err)
	}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// interrupt sends SIGINT (etcdctl then unlocks or resigns) and waits for
// the process to exit.
func (p *etcdctlProc) interrupt(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("etcdctl did not exit after SIGINT; output:\n%s", p.out)
	}
}

// lineBuffer collects a process's output for polling.
type lineBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lineBuffer) lines() []string {
	s := strings.TrimSpace(l.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// ctxTimeout returns a context bounded by d within the test's.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
