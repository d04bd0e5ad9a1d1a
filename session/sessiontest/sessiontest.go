// Package sessiontest gives the SDK's test binaries one cluster for their
// whole run, started from TestMain, so that Example tests run against a
// real server and tests without faults share one cluster instead of
// starting their own.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrNoServer means no server binary was found, so nothing can run.
var ErrNoServer = errors.New("sessiontest: no server binary")

// Start starts a cluster of size members outside any test and returns it
// with the function that stops it (call it after m.Run). testcluster's
// helpers report failures to a testing.TB, which TestMain does not have;
// mainTB stands in for one.
func Start(size int) (*testcluster.Cluster, func(), error) {
	tb := &mainTB{}
	var c *testcluster.Cluster
	done := make(chan struct{})
	go func() { // testcluster ends this goroutine on failure (Fatal, Skip)
		defer close(done)
		c = testcluster.Start(tb, size)
	}()
	<-done
	if c == nil {
		tb.cleanup()
		if tb.skipped != "" {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoServer, tb.skipped)
		}
		return nil, nil, fmt.Errorf("sessiontest: start cluster: %s", tb.failed)
	}
	return c, tb.cleanup, nil
}

// Main is a whole TestMain: it starts a cluster of size members, stores
// it in *cluster for the tests, runs them, stops the cluster and exits
// with the tests' code. Without a server binary every test is skipped.
func Main(m *testing.M, size int, cluster **testcluster.Cluster) {
	c, stop, err := Start(size)
	if errors.Is(err, ErrNoServer) {
		fmt.Fprintln(os.Stderr, "skipping every test:", err)
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*cluster = c
	code := m.Run()
	stop()
	os.Exit(code)
}

// Client returns a client of endpoints closed when t ends.
func Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// MinTTL is the smallest session TTL etcd grants with its default
// election timeout (1s).
const MinTTL = 2 * time.Second

// NewSession starts a session of ttl on cli, closed when t ends.
func NewSession(t testing.TB, cli *clientv3.Client, ttl time.Duration) *session.Session {
	t.Helper()
	s, err := session.New(context.Background(), cli, session.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// Fresh deletes every key under prefix, so that a test starts clean on the
// shared cluster even when run again (-count).
func Fresh(t testing.TB, cli *clientv3.Client, prefix string) {
	t.Helper()
	if _, err := cli.Delete(context.Background(), prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}

// mainTB implements the part of testing.TB that testcluster uses; any
// other method panics on the nil embedded interface, loudly.
type mainTB struct {
	testing.TB

	mu       sync.Mutex // guards the fields below
	cleanups []func()
	dirs     []string
	failed   string
	skipped  string
}

func (t *mainTB) Helper()                         {}
func (t *mainTB) Name() string                    { return "TestMain" }
func (t *mainTB) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (t *mainTB) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

func (t *mainTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *mainTB) TempDir() string {
	dir, err := os.MkdirTemp("", "sessiontest")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirs = append(t.dirs, dir)
	return dir
}

func (t *mainTB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }

func (t *mainTB) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.failed = fmt.Sprintf(format, args...)
	t.mu.Unlock()
	fmt.Fprintln(os.Stderr, "sessiontest:", t.failed)
	runtime.Goexit()
}

func (t *mainTB) Skip(args ...any) {
	t.mu.Lock()
	t.skipped = fmt.Sprint(args...)
	t.mu.Unlock()
	runtime.Goexit()
}

func (t *mainTB) Skipf(format string, args ...any) { t.Skip(fmt.Sprintf(format, args...)) }

// cleanup runs the cleanups in reverse order, as testing does, then
// removes the temporary directories.
func (t *mainTB) cleanup() {
	t.mu.Lock()
	fs, dirs := slices.Clone(t.cleanups), slices.Clone(t.dirs)
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}
