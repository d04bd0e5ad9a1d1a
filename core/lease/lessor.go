package lease

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/concordkv/concord/core/backend"
)

// KeyDeleter deletes keys in one revision: mvcc.Store.DeleteKeys.
type KeyDeleter interface {
	// DeleteKeys deletes the keys that exist, all in one new revision, and
	// returns the store revision afterwards.
	DeleteKeys(keys [][]byte) (int64, error)
}

// lease is one granted lease. The first fields are replicated state, the
// same on every member; the rest is the primary's own timing.
type lease struct {
	id        int64
	ttl       int64 // granted TTL, seconds
	remaining int64 // last checkpointed remaining TTL, seconds; 0: none
	keys      map[string]struct{}

	deadline time.Time // primary only: when it expires
	// unsure is set when a checkpoint proposal failed with an unknown
	// outcome: it may still be applied, so a renewal must clear it.
	unsure bool
	// revoking is set while the primary's revoke proposal is in flight;
	// attempt is closed when that proposal returns, whatever the outcome.
	revoking bool
	attempt  chan struct{}
}

func newLease(id, ttl, remaining int64) *lease {
	return &lease{id: id, ttl: ttl, remaining: remaining, keys: make(map[string]struct{})}
}

// loggedRemaining is the remaining TTL the log knows: the last checkpoint,
// or the whole TTL when there is none.
func (le *lease) loggedRemaining() time.Duration {
	if le.remaining > 0 {
		return time.Duration(le.remaining) * time.Second
	}
	return time.Duration(le.ttl) * time.Second
}

// Lessor is the lease table of one member. The raft applier changes it
// (Grant, Revoke, Checkpoint, and the mvcc hooks Attach and Detach);
// every member holds the same table. The primary (the leader's lessor,
// once promoted) also keeps a deadline per lease, expires leases by
// proposing revocations, checkpoints remaining TTLs and answers renewals.
type Lessor struct {
	cfg  Config
	log  *slog.Logger
	raft Raft

	// mu guards every field below and every lease. It is taken inside the
	// mvcc store's write lock (by the hooks), so it is never held while
	// calling into the store. Lock order: mvcc write lock, then mu, then
	// the backend's locks.
	mu     sync.Mutex
	be     *backend.Backend
	leases map[int64]*lease
	closed bool

	// Leadership. epoch counts SetLeader calls, so that a promotion
	// prepared under one leadership is dropped if another began since.
	epoch      uint64
	wantLeader bool
	primary    bool
	// primaryCtx is cancelled on demotion: it bounds the primary's
	// proposals.
	primaryCtx    context.Context
	cancelPrimary context.CancelFunc

	// Primary-only scheduling.
	expiries    *timerQueue // leases not being revoked, by deadline
	checkpoints *timerQueue // leases by checkpoint due time
	// clears are renewals waiting for their lease's checkpoint to be
	// cleared through raft before they answer.
	clears map[int64][]chan error
	// inFlight maps the leases of the checkpoint request being proposed to
	// the remaining TTL proposed (0: a clear); clearing holds the renewals
	// that wait for those clears.
	inFlight map[int64]int64
	clearing map[int64][]chan error
	revokes  int // revoke proposals in flight
	pace     pacer

	wakeExpiry     chan struct{} // buffered 1
	wakeCheckpoint chan struct{} // buffered 1
	wakePromote    chan struct{} // buffered 1

	idSeq atomic.Uint64 // low 48 bits of picked IDs

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// New validates cfg and starts the lessor's goroutines (promotion, expiry,
// checkpoints); they idle until SetLeader(true). Call Recover before use.
func New(cfg Config) (*Lessor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Lessor{
		cfg:            cfg,
		log:            log,
		raft:           cfg.Raft,
		leases:         make(map[int64]*lease),
		expiries:       newTimerQueue(),
		checkpoints:    newTimerQueue(),
		clears:         make(map[int64][]chan error),
		inFlight:       make(map[int64]int64),
		clearing:       make(map[int64][]chan error),
		pace:           newPacer(cfg.RevokeRate),
		wakeExpiry:     make(chan struct{}, 1),
		wakeCheckpoint: make(chan struct{}, 1),
		wakePromote:    make(chan struct{}, 1),
	}
	// Like etcd's ID generator: a millisecond timestamp and a counter, so a
	// restarted member does not reuse the IDs it picked before.
	l.idSeq.Store(uint64(time.Now().UnixMilli()) << 8)
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	l.primaryCtx, l.cancelPrimary = context.WithCancel(ctx)
	l.cancelPrimary()
	l.wg.Go(func() { l.runPromoter(ctx) })
	l.wg.Go(func() { l.runExpiry(ctx) })
	l.wg.Go(func() { l.runCheckpointer(ctx) })
	return l, nil
}

// Close stops the lessor's goroutines and waits for them; proposals in
// flight are abandoned. It does not close the backend.
func (l *Lessor) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.demoteLocked()
	l.mu.Unlock()
	l.stop()
	l.wg.Wait()
	return nil
}

// Recover replaces the table with the leases stored in be and makes be the
// backend the applier writes to: at start and after a raft snapshot
// replaced the database. Keys are attached afterwards by the store's Open
// (mvcc.Config.Leases), so open the store after Recover. On the primary
// every lease gets a fresh deadline, as on promotion. Applier only.
func (l *Lessor) Recover(be *backend.Backend) error {
	leases, err := loadRows(be)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, le := range l.leases {
		if le.revoking {
			le.revoking = false
			close(le.attempt)
		}
	}
	l.be, l.leases = be, leases
	l.expiries, l.checkpoints = newTimerQueue(), newTimerQueue()
	if l.primary {
		l.scheduleAllLocked(time.Now())
	}
	l.log.Debug("lease table loaded", "leases", len(leases))
	return nil
}

// PrepareGrant returns the grant to propose for r: a copy with an ID picked
// when r has none and the TTL raised to the minimum. Choosing both before
// proposing keeps the apply deterministic. A picked ID is positive, not
// granted here yet, and unique to the proposing member: the low 16 bits of
// memberID are its high bits (below the sign bit), as in etcd, then a
// timestamp-seeded counter.
func (l *Lessor) PrepareGrant(r *pb.LeaseGrantRequest, memberID uint64) *pb.LeaseGrantRequest {
	out := &pb.LeaseGrantRequest{ID: r.ID, TTL: max(r.TTL, seconds(l.cfg.MinTTL))}
	for out.ID == 0 {
		id := int64((memberID&0xffff)<<47 | l.idSeq.Add(1)&(1<<47-1))
		if !l.Exists(id) {
			out.ID = id
		}
	}
	return out
}

// Grant applies a LeaseGrantRequest prepared by PrepareGrant. Applier only.
func (l *Lessor) Grant(r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	switch {
	case r.ID == 0:
		return nil, ErrLeaseNotFound
	case r.TTL > MaxTTL:
		return nil, ErrLeaseTTLTooLarge
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.leases[r.ID]; ok {
		return nil, ErrLeaseExists
	}
	le := newLease(r.ID, r.TTL, 0)
	l.leases[r.ID] = le
	l.persistLocked(le)
	if l.primary {
		now := time.Now()
		le.deadline = now.Add(time.Duration(le.ttl) * time.Second)
		l.scheduleLocked(le)
	}
	return &pb.LeaseGrantResponse{Header: &pb.ResponseHeader{}, ID: le.id, TTL: le.ttl}, nil
}

// Revoke applies a LeaseRevokeRequest: the lease's keys are deleted in one
// revision of kv and the lease is removed. The response header carries
// the store revision afterwards. Applier only.
func (l *Lessor) Revoke(id int64, kv KeyDeleter) (*pb.LeaseRevokeResponse, error) {
	l.mu.Lock()
	le, ok := l.leases[id]
	if !ok {
		l.mu.Unlock()
		return nil, ErrLeaseNotFound
	}
	keys := make([][]byte, 0, len(le.keys))
	for k := range le.keys {
		keys = append(keys, []byte(k))
	}
	l.mu.Unlock()
	// Sorted so that every member deletes in the same order (DeleteKeys
	// sorts too; this keeps the request the same whatever the map order).
	slices.SortFunc(keys, bytes.Compare)
	// The store calls Detach for each key, taking mu: it must be free here.
	rev, err := kv.DeleteKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("revoke lease %x: %w", id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.leases, id)
	l.be.Delete(Bucket, rowKey(id))
	l.expiries.Remove(id)
	l.checkpoints.Remove(id)
	if le.revoking {
		le.revoking = false
		close(le.attempt)
	}
	for _, ws := range []map[int64][]chan error{l.clears, l.clearing} {
		for _, w := range ws[id] {
			w <- ErrLeaseNotFound
		}
		delete(ws, id)
	}
	return &pb.LeaseRevokeResponse{Header: &pb.ResponseHeader{Revision: rev}}, nil
}

// Checkpoint applies a LeaseCheckpointRequest: each listed lease that still
// exists records its remaining TTL (0 clears it). Applier only.
func (l *Lessor) Checkpoint(r *pb.LeaseCheckpointRequest) (*pb.LeaseCheckpointResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, cp := range r.Checkpoints {
		le, ok := l.leases[cp.ID]
		if !ok {
			continue
		}
		remaining := max(cp.Remaining_TTL, 0)
		if remaining == 0 {
			// A clear is proposed after any checkpoint it must undo.
			le.unsure = false
		}
		if le.remaining != remaining {
			le.remaining = remaining
			l.persistLocked(le)
		}
		if l.primary {
			l.setCheckpointLocked(le.id, l.checkpointDue(le))
		}
	}
	return &pb.LeaseCheckpointResponse{Header: &pb.ResponseHeader{}}, nil
}

// Exists reports whether lease id is granted (mvcc.LeaseHooks).
func (l *Lessor) Exists(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.leases[id]
	return ok
}

// Attach records that key belongs to lease id (mvcc.LeaseHooks).
func (l *Lessor) Attach(id int64, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if le, ok := l.leases[id]; ok {
		le.keys[string(key)] = struct{}{}
		return
	}
	l.log.Warn("key attached to a lease that does not exist", "lease", fmt.Sprintf("%x", id), "key", string(key))
}

// Detach records that key no longer belongs to lease id (mvcc.LeaseHooks).
func (l *Lessor) Detach(id int64, key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if le, ok := l.leases[id]; ok {
		delete(le.keys, string(key))
	}
}

// Leases returns the IDs of every granted lease, ascending.
func (l *Lessor) Leases() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.leases))
}

// Info is a lease as the replicated table holds it.
type Info struct {
	ID int64
	// TTL is the granted TTL; Remaining the last checkpointed remaining
	// TTL (0: none).
	TTL, Remaining time.Duration
	// Keys are the attached keys, sorted.
	Keys [][]byte
}

// Lookup returns lease id from the local table.
func (l *Lessor) Lookup(id int64) (Info, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	le, ok := l.leases[id]
	if !ok {
		return Info{}, false
	}
	return Info{
		ID:        le.id,
		TTL:       time.Duration(le.ttl) * time.Second,
		Remaining: time.Duration(le.remaining) * time.Second,
		Keys:      sortedKeys(le),
	}, true
}

func sortedKeys(le *lease) [][]byte {
	keys := make([][]byte, 0, len(le.keys))
	for k := range le.keys {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys
}
