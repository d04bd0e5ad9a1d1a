package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	waltypes "github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
)

// Layout of Config.Dir.
const (
	walDirName      = "wal"     // raft-wal segments and meta database
	boltFileName    = "raft.db" // raft-boltdb's single file
	snapshotsRetain = 2         // FileSnapshotStore keeps this many; it adds "snapshots/"
	logCacheSize    = 512       // recent entries served from memory to replication
)

// stores are raft's log, stable and snapshot stores in one directory.
type stores struct {
	log    raft.LogStore // the cached log store
	stable raft.StableStore
	snaps  raft.SnapshotStore
	close  func() error
}

// storeKindIn reports which log store dir already holds, or "" if none.
func storeKindIn(dir string) (LogStoreKind, error) {
	var found []LogStoreKind
	if _, err := os.Stat(filepath.Join(dir, walDirName)); err == nil {
		found = append(found, LogStoreWAL)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("stat raft wal dir: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltFileName)); err == nil {
		found = append(found, LogStoreBolt)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("stat raft bolt file: %w", err)
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("raft dir %s holds both a wal and a bolt log store", dir)
	}
}

// openStores opens (creating if needed) the stores of kind in dir.
func openStores(dir string, kind LogStoreKind, walSegmentSize int, logger hclog.Logger) (*stores, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create raft dir %s: %w", dir, err)
	}
	existing, err := storeKindIn(dir)
	if err != nil {
		return nil, err
	}
	if existing != "" && existing != kind {
		return nil, fmt.Errorf("raft dir %s holds a %s log store, configured %s", dir, existing, kind)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetain, logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("open raft snapshot store in %s: %w", dir, err)
	}
	var (
		logs   raft.LogStore
		stable raft.StableStore
		closer func() error
	)
	switch kind {
	case LogStoreWAL:
		walDir := filepath.Join(dir, walDirName)
		// wal.Open expects the directory to exist.
		if err := os.MkdirAll(walDir, 0o700); err != nil {
			return nil, fmt.Errorf("create raft wal dir %s: %w", walDir, err)
		}
		if err := checkNotLocked(filepath.Join(walDir, metadb.FileName)); err != nil {
			return nil, err
		}
		// A zero segment size means raft-wal's default.
		w, err := wal.Open(walDir, wal.WithLogger(logger.Named("wal")), wal.WithSegmentSize(walSegmentSize),
			wal.WithSegmentFiler(segment.NewFiler(walDir, tidyCreateVFS{walfs.New()})))
		if err != nil {
			return nil, fmt.Errorf("open raft wal %s: %w", walDir, err)
		}
		logs, stable, closer = w, w, w.Close
	case LogStoreBolt:
		path := filepath.Join(dir, boltFileName)
		if err := checkNotLocked(path); err != nil {
			return nil, err
		}
		b, err := raftboltdb.New(raftboltdb.Options{
			Path: path,
			// Fail rather than wait forever when another process holds it.
			BoltOptions: &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true},
		})
		if err != nil {
			return nil, fmt.Errorf("open raft bolt store %s: %w", path, err)
		}
		logs, stable, closer = b, b, b.Close
	default:
		return nil, fmt.Errorf("unknown log store kind %q", kind)
	}
	cached, err := raft.NewLogCache(logCacheSize, logs)
	if err != nil {
		_ = closer()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	return &stores{log: cached, stable: stable, snaps: snaps, close: closer}, nil
}

// HasState reports whether dir holds raft state (a log, a term or a
// snapshot): true means restart, false means bootstrap or join. Call it
// before Open: it fails while a Node has dir open.
func HasState(dir string) (bool, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("stat raft dir %s: %w", dir, err)
	}
	kind, err := storeKindIn(dir)
	if err != nil {
		return false, err
	}
	if kind == "" {
		// No log store; a snapshot alone still counts as state.
		snaps, err := listSnapshotsIfAny(dir)
		return snaps > 0, err
	}
	st, err := openStores(dir, kind, 0, hclog.NewNullLogger())
	if err != nil {
		return false, err
	}
	has, err := raft.HasExistingState(st.log, st.stable, st.snaps)
	if cerr := st.close(); err == nil && cerr != nil {
		err = fmt.Errorf("close raft stores in %s: %w", dir, cerr)
	}
	if err != nil {
		return false, fmt.Errorf("inspect raft state in %s: %w", dir, err)
	}
	return has, nil
}

// listSnapshotsIfAny counts snapshots in dir without creating anything.
func listSnapshotsIfAny(dir string) (int, error) {
	if _, err := os.Stat(filepath.Join(dir, "snapshots")); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetain, hclog.NewNullLogger())
	if err != nil {
		return 0, fmt.Errorf("open raft snapshot store in %s: %w", dir, err)
	}
	list, err := snaps.List()
	if err != nil {
		return 0, fmt.Errorf("list raft snapshots in %s: %w", dir, err)
	}
	return len(list), nil
}

// tidyCreateVFS is raft-wal's file system with one fix: a segment whose
// creation fails after the file was made (preallocation on a full disk) is
// removed again. raft-wal leaves it behind, and since it creates segments
// with O_EXCL, every later attempt with the same name (a log truncation
// retried by raft) fails with "file exists" until the member restarts.
type tidyCreateVFS struct{ waltypes.VFS }

// Create implements waltypes.VFS.
func (v tidyCreateVFS) Create(dir, name string, size uint64) (waltypes.WritableFile, error) {
	f, err := v.VFS.Create(dir, name, size)
	if err != nil && !errors.Is(err, os.ErrExist) {
		if rerr := os.Remove(filepath.Join(dir, name)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove half-created segment: %w", rerr))
		}
	}
	return f, err
}
