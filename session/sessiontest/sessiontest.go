// Package sessiontest gives the SDK's test binaries one cluster for their
// whole run, started from TestMain, so that Example tests run against a
// real server and tests without faults share one cluster instead of
// starting their own.
package sessiontest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
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
