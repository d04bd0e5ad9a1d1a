package server

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/concordkv/concord/core/backend"
	"github.com/concordkv/concord/core/raftnode"
)

// The member table lives in the replicated database, so that it travels
// with raft snapshots: one row per member keyed by its ID, and the cluster
// ID in the meta bucket.
const membersBucket backend.Bucket = "members"

var clusterIDKey = []byte("cluster_id")

func memberKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func putMember(be *backend.Backend, m memberInfo) {
	// A struct of strings, bools and integers always marshals.
	b, _ := json.Marshal(m)
	be.Put(membersBucket, memberKey(m.ID), b)
}

func deleteMember(be *backend.Backend, id uint64) { be.Delete(membersBucket, memberKey(id)) }

func putClusterID(be *backend.Backend, id uint64) {
	be.Put(backend.MetaBucket, clusterIDKey, binary.BigEndian.AppendUint64(nil, id))
}

// loadMembers reads the member table from the database.
func loadMembers(be *backend.Backend) (clusterID uint64, members []memberInfo, err error) {
	v, ok, err := be.Get(backend.MetaBucket, clusterIDKey)
	if err != nil {
		return 0, nil, fmt.Errorf("load cluster id: %w", err)
	}
	if ok && len(v) == 8 {
		clusterID = binary.BigEndian.Uint64(v)
	}
	rows, err := be.Range(membersBucket, nil, nil, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("load members: %w", err)
	}
	for _, row := range rows {
		var m memberInfo
		if err := json.Unmarshal(row.Value, &m); err != nil {
			return 0, nil, fmt.Errorf("load member %x: %w", row.Key, err)
		}
		members = append(members, m)
	}
	return clusterID, members, nil
}

// snapshot adapts a backend snapshot to what raftnode streams.
type snapshot struct{ *backend.Snapshot }

func (s snapshot) Release() { _ = s.Close() }

var _ raftnode.Snapshot = snapshot{}

// backendWriteSnapshot stores a snapshot stream as a database file.
func backendWriteSnapshot(path string, r io.Reader) error {
	_, err := backend.WriteSnapshotFile(path, r)
	return err
}

// replaceFile moves src over dst durably.
func replaceFile(src, dst string) error {
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
