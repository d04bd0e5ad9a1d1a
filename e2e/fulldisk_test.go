package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// Each member's data dir is a tmpfs of fullDiskSize: raft-wal reserves a
// 64 MiB segment at start, which leaves about 16 MiB for the database and
// the log, filled by a few dozen writes of fullDiskValue bytes.
const (
	fullDiskSize  = "80m"
	freedDiskSize = "512m"
	fullDiskValue = 256 << 10
)

// TestFullDisks fills the disk of every member of a three-member cluster
// with writes of unique keys until the cluster refuses them, keeps writing
// a while longer, then gives the disks room. No member exits; writes are
// accepted again; every acknowledged write is present once with its
// value and revision, none appears twice, and the members agree on HashKV,
// both then and after a restart of every member from its disk.
//
// It mounts a tmpfs per member, so it runs as root only.
func TestFullDisks(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("mounts a small tmpfs per member: needs root")
	}
	// The tmpfs mounts live outside the test's temp dirs, which hold
	// symlinks to them: the temp dirs are removed before later cleanups
	// run, and must not hold mount points then.
	base, err := os.MkdirTemp("", "concord-full-disks")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []string
	t.Cleanup(func() { // runs last: after the cluster's cleanup killed the members
		for _, dir := range mounts {
			if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", dir, err, out)
			}
		}
		_ = os.RemoveAll(base)
	})
	mount := func() (string, error) {
		dir := filepath.Join(base, strconv.Itoa(len(mounts)))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", err
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+fullDiskSize, "tmpfs", dir).CombinedOutput(); err != nil {
			return "", fmt.Errorf("mount tmpfs on %s: %v: %s", dir, err, strings.TrimSpace(string(out)))
		}
		mounts = append(mounts, dir)
		return dir, nil
	}
	if _, err := mount(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	onTmpfs := func(dataDir string) error {
		dir, err := mount()
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
			return err
		}
		return os.Symlink(dir, dataDir)
	}
	c := newClusterPrepared(t, 3, onTmpfs)

	history := newWriteHistory()
	value := func(key string) string {
		return key + strings.Repeat(".", fullDiskValue-len(key))
	}
	cli, err := newClient(c.members...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	// Writers put unique keys until stop, pausing briefly after a refusal.
	ctx, stop := context.WithCancel(t.Context())
	var acked, refusals atomic.Int64
	var firstRefusal sync.Once
	refused := make(chan struct{})
	var firstErr string
	var errsMu sync.Mutex
	unknownErrs := map[string]int{} // refusals that are neither etcd's errors nor a deadline
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for seq := 0; ctx.Err() == nil; seq++ {
				key := fmt.Sprintf("s/w%d/%06d", w, seq)
				history.attempt(key, value(key))
				opCtx, opCancel := context.WithTimeout(ctx, 3*time.Second)
				resp, err := cli.Put(opCtx, key, value(key))
				opCancel()
				if err != nil {
					refusals.Add(1)
					firstRefusal.Do(func() { firstErr = err.Error(); close(refused) })
					var etcdErr rpctypes.EtcdError
					if !errors.As(err, &etcdErr) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
						errsMu.Lock()
						unknownErrs[err.Error()]++
						errsMu.Unlock()
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				history.ack(key, resp.Header.Revision)
				acked.Add(1)
			}
		})
	}
	select {
	case <-refused:
	case <-time.After(2 * time.Minute):
		t.Fatalf("no write refused after %d acknowledged writes of %d bytes", acked.Load(), fullDiskValue)
	}
	time.Sleep(3 * time.Second) // writes keep coming at full disks
	stop()
	wg.Wait()
	t.Logf("disks full: %d writes acknowledged, %d refused (first: %s)", acked.Load(), refusals.Load(), firstErr)
	if len(unknownErrs) > 0 {
		t.Errorf("refusals without an etcd error a client can act on: %v", unknownErrs)
	}
	for _, m := range c.members {
		if !m.proc.running() {
			t.Fatalf("%s exited at a full disk: %v", m.name, c.exitedError(m))
		}
	}
	// The refusals came from full disks, not from something else.
	fullest := uint64(math.MaxUint64)
	for _, dir := range mounts[1:] {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatalf("statfs %s: %v", dir, err)
		}
		fullest = min(fullest, st.Bavail*uint64(st.Bsize))
	}
	if fullest >= fullDiskValue {
		t.Fatalf("writes were refused, but every member's disk has room for another (%d bytes free at least)", fullest)
	}

	for _, dir := range mounts[1:] {
		if out, err := exec.Command("mount", "-o", "remount,size="+freedDiskSize, dir).CombinedOutput(); err != nil {
			t.Fatalf("grow tmpfs %s: %v: %s", dir, err, out)
		}
	}
	waitFor(t, 30*time.Second, "a write accepted once the disks have room", func() bool {
		opCtx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		key := fmt.Sprintf("s/after/%d", time.Now().UnixNano())
		history.attempt(key, value(key))
		resp, err := cli.Put(opCtx, key, value(key))
		if err == nil {
			history.ack(key, resp.Header.Revision)
		}
		return err == nil
	})
	rev := history.verify(t, c.client())
	c.hashKV(rev)

	c.stopAll()
	c.restartAll()
	rev = history.verify(t, c.client())
	c.hashKV(rev)
}
