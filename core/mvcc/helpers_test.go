package mvcc_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/concordkv/concord/core/backend"
	"github.com/concordkv/concord/core/mvcc"
)

// fakeLeases is a LeaseHooks that records attachments.
type fakeLeases struct {
	granted  map[int64]bool
	attached map[int64]map[string]bool
	log      []string
}

func newFakeLeases(ids ...int64) *fakeLeases {
	f := &fakeLeases{granted: map[int64]bool{}, attached: map[int64]map[string]bool{}}
	for _, id := range ids {
		f.granted[id] = true
	}
	return f
}

func (f *fakeLeases) Exists(id int64) bool { return f.granted[id] }
func (f *fakeLeases) Attach(id int64, key []byte) {
	if f.attached[id] == nil {
		f.attached[id] = map[string]bool{}
	}
	f.attached[id][string(key)] = true
	f.log = append(f.log, fmt.Sprintf("attach %d %s", id, key))
}
func (f *fakeLeases) Detach(id int64, key []byte) {
	delete(f.attached[id], string(key))
	f.log = append(f.log, fmt.Sprintf("detach %d %s", id, key))
}

func (f *fakeLeases) keys(id int64) []string {
	var out []string
	for k := range f.attached[id] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type env struct {
	t    testing.TB
	path string
	be   *backend.Backend
	s    *mvcc.Store
	cfg  mvcc.Config
}

func newEnv(t testing.TB, cfg mvcc.Config) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "db"), cfg: cfg}
	e.open()
	t.Cleanup(func() { e.close() })
	return e
}

func newStore(t testing.TB) *mvcc.Store { return newEnv(t, mvcc.DefaultConfig()).s }

func (e *env) open() {
	e.t.Helper()
	bc := backend.DefaultConfig(e.path)
	bc.BatchInterval = 5 * time.Millisecond
	be, err := backend.Open(bc)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := mvcc.Open(be, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.be, e.s = be, s
}

func (e *env) close() {
	if e.s == nil {
		return
	}
	e.s.Close()
	if err := e.be.Close(); err != nil {
		e.t.Error(err)
	}
	e.s, e.be = nil, nil
}

func (e *env) reopen() {
	e.close()
	e.open()
}

func put(t testing.TB, s *mvcc.Store, k, v string) *pb.PutResponse {
	t.Helper()
	resp, err := s.Put(&pb.PutRequest{Key: []byte(k), Value: []byte(v)})
	if err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
	return resp
}

func del(t testing.TB, s *mvcc.Store, k, end string) *pb.DeleteRangeResponse {
	t.Helper()
	req := &pb.DeleteRangeRequest{Key: []byte(k)}
	if end != "" {
		req.RangeEnd = []byte(end)
	}
	resp, err := s.DeleteRange(req)
	if err != nil {
		t.Fatalf("delete %s: %v", k, err)
	}
	return resp
}

func get(t testing.TB, s *mvcc.Store, k string, rev int64) *mvccpb.KeyValue {
	t.Helper()
	kv, err := s.RangeAt([]byte(k), rev)
	if err != nil {
		t.Fatalf("get %s@%d: %v", k, rev, err)
	}
	return kv
}

// kvString renders kvs compactly: key=value@create/mod/version[/lease].
func kvString(kvs []*mvccpb.KeyValue) string {
	var parts []string
	for _, kv := range kvs {
		s := fmt.Sprintf("%s=%s@%d/%d/%d", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version)
		if kv.Lease != 0 {
			s += fmt.Sprintf("/L%d", kv.Lease)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func keysOf(kvs []*mvccpb.KeyValue) string {
	var parts []string
	for _, kv := range kvs {
		parts = append(parts, string(kv.Key))
	}
	return strings.Join(parts, ",")
}
