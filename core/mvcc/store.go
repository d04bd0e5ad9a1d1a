package mvcc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"

	"github.com/concordkv/concord/core/backend"
)

// KeyBucket holds every revision of every key: key = revision bytes,
// value = marshaled mvccpb.KeyValue (etcd's layout).
const KeyBucket backend.Bucket = "key"

// Keys of the store's facts in backend.MetaBucket (etcd's names; values are
// 8-byte big-endian revisions).
var (
	scheduledCompactKey = []byte("scheduledCompactRev")
	finishedCompactKey  = []byte("finishedCompactRev")
)

// LeaseHooks connects the store to the lease table. The store calls them
// from the writer goroutine, in a deterministic order, while applying; they
// must not block and must not call back into the Store.
type LeaseHooks interface {
	// Exists reports whether lease id is granted.
	Exists(id int64) bool
	// Attach records that key is now attached to lease id.
	Attach(id int64, key []byte)
	// Detach records that key is no longer attached to lease id.
	Detach(id int64, key []byte)
}

// Config configures a Store. The zero value works (no leases, no events,
// discarded logs).
type Config struct {
	// Logger receives operational messages (discarded when nil).
	Logger *slog.Logger
	// Leases is the lease table; nil means no leases: a request naming any
	// lease other than 0 fails with ErrLeaseNotFound. On Open, Attach is
	// called for every live key that carries a lease, in key order.
	Leases LeaseHooks
	// OnWrite, if set, is called by the writer after every revision-bumping
	// write, in revision order, with that revision's events in sub-revision
	// order. The revision is already visible to readers. It must not block
	// and must not modify the events.
	OnWrite func(rev int64, events []*mvccpb.Event)
	// CompactionBatch is how many keys (and at most how many deleted rows)
	// one compaction step handles while holding off writes (default 1000).
	CompactionBatch int
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), CompactionBatch: 1000}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if c.CompactionBatch < 0 {
		return fmt.Errorf("mvcc config: CompactionBatch %d must not be negative", c.CompactionBatch)
	}
	return nil
}

// Store is etcd's multi-version key-value model on a backend.Backend. See
// the package documentation for its threading rules.
type Store struct {
	be  *backend.Backend
	cfg Config
	log *slog.Logger

	// writeMu is held by every write request for its whole duration and by
	// each compaction step. It guards the fields below. Lock order:
	// writeMu → backend locks.
	writeMu    sync.Mutex
	idx        *indexTree // master index, mutated only under writeMu
	currentRev int64
	compactRev int64
	jobs       []compactJob // scheduled compactions not yet started
	closed     bool

	// state is what readers use: an immutable clone of the index with the
	// revisions it is valid for. Published under writeMu after every change.
	state atomic.Pointer[readState]

	wakeCompactor chan struct{}
	stop          chan struct{}
	wg            sync.WaitGroup
}

type readState struct {
	idx        *indexTree
	rev        int64
	compactRev int64
}

type compactJob struct {
	rev  int64
	done chan struct{}
}

// Open builds a Store over be: it rebuilds the in-memory index from the key
// bucket (also after be was replaced by a snapshot), re-attaches leases,
// and resumes a compaction that a restart interrupted. Close the Store
// before closing be.
func Open(be *backend.Backend, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = DefaultConfig().Logger
	}
	if cfg.CompactionBatch == 0 {
		cfg.CompactionBatch = DefaultConfig().CompactionBatch
	}
	s := &Store{
		be:            be,
		cfg:           cfg,
		log:           cfg.Logger,
		idx:           newIndexTree(),
		currentRev:    1,
		wakeCompactor: make(chan struct{}, 1),
		stop:          make(chan struct{}),
	}
	if err := s.rebuild(); err != nil {
		return nil, err
	}
	s.publishLocked()
	s.wg.Go(s.runCompactor)
	return s, nil
}

// rebuild loads the index, revisions and compaction state from the backend.
func (s *Store) rebuild() error {
	var scheduled, finished int64
	err := s.be.Read(func(v *backend.ReadView) error {
		if p, ok := v.Get(backend.MetaBucket, scheduledCompactKey); ok {
			scheduled = decodeRev(p)
		}
		if p, ok := v.Get(backend.MetaBucket, finishedCompactKey); ok {
			finished = decodeRev(p)
		}
		for k, val := range v.Range(KeyBucket, nil, nil, 0) {
			rev, tomb, err := bytesToRev(k)
			if err != nil {
				return err
			}
			var kv mvccpb.KeyValue
			if err := proto.Unmarshal(val, &kv); err != nil {
				return fmt.Errorf("unmarshal revision %d.%d: %w", rev.main, rev.sub, err)
			}
			ki := lookup(s.idx, kv.Key)
			if ki == nil {
				ki = &keyIndex{key: kv.Key}
			}
			if tomb {
				ki = ki.withTombstone(rev)
			} else {
				ki = ki.withPut(rev, kv.CreateRevision, kv.Version, kv.Lease)
			}
			s.idx.ReplaceOrInsert(ki)
			s.currentRev = max(s.currentRev, rev.main)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild mvcc index from %s: %w", s.be.Path(), err)
	}
	// A compaction may have removed every row up to its revision.
	s.currentRev = max(s.currentRev, scheduled)
	s.compactRev = scheduled
	if scheduled > finished {
		s.log.Info("mvcc: resuming interrupted compaction", "rev", scheduled, "finished", finished)
		s.jobs = append(s.jobs, compactJob{rev: scheduled, done: make(chan struct{})})
	}
	if s.cfg.Leases != nil {
		s.idx.Ascend(func(ki *keyIndex) bool {
			if ki.alive() && ki.lease != 0 {
				s.cfg.Leases.Attach(ki.lease, ki.key)
			}
			return true
		})
	}
	s.log.Debug("mvcc: index rebuilt", "keys", s.idx.Len(), "rev", s.currentRev, "compactRev", s.compactRev)
	return nil
}

// Close stops the background compactor. An unfinished compaction resumes
// on the next Open. It does not close the backend.
func (s *Store) Close() error {
	s.writeMu.Lock()
	if s.closed {
		s.writeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	for _, j := range s.jobs {
		close(j.done)
	}
	s.jobs = nil
	s.writeMu.Unlock()
	close(s.stop)
	s.wg.Wait()
	return nil
}

// publishLocked makes the current master index visible to readers.
// Requires writeMu (or exclusive access during Open).
func (s *Store) publishLocked() {
	s.state.Store(&readState{idx: s.idx.Clone(), rev: s.currentRev, compactRev: s.compactRev})
}

// Rev returns the current store revision (1 for an empty store).
func (s *Store) Rev() int64 { return s.state.Load().rev }

// CompactRevision returns the revision of the last scheduled compaction
// (0 if none). Reads below it fail with ErrCompacted.
func (s *Store) CompactRevision() int64 { return s.state.Load().compactRev }

func encodeRev(rev int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(rev)) }

func decodeRev(p []byte) int64 {
	if len(p) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(p))
}

// errInternal marks a broken invariant (corrupt or inconsistent storage).
var errInternal = errors.New("mvcc: internal error")
