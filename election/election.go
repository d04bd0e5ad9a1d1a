package election

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors a caller may branch on; the package wraps them with detail.
var (
	// ErrNoLeader: Leader found no candidate.
	ErrNoLeader = errors.New("election: no leader")
	// ErrNotLeader: the leadership ended (resigned, key deleted, session
	// ended) before Proclaim or Resign; Err wraps it with the cause.
	ErrNotLeader = errors.New("election: not the leader")
	// ErrNoCandidacy: Resume found no key of this session's lease.
	ErrNoCandidacy = errors.New("election: no candidacy to resume")
	// ErrCampaigning: Campaign or Resume while another is in flight on the
	// same Election, or while its leadership lives (Resign first): one
	// session has one key per election.
	ErrCampaigning = errors.New("election: this session already campaigns")
	// ErrEmptyName: an election needs a name.
	ErrEmptyName = errors.New("election: empty name")
)

// Election is a session's place in the election name: it campaigns with
// the session's lease, so one session is at most one candidate.
type Election struct {
	s    *session.Session
	name string

	mu       sync.Mutex  // guards the fields below
	entering bool        // a Campaign or Resume is in flight
	current  *Leadership // the last one won, until it is resigned
}

// New returns the election name for session s. Candidates' keys are
// NAME/<lease-hex>, as etcd's concurrency.Election names them.
func New(s *session.Session, name string) *Election {
	return &Election{s: s, name: name}
}

// Name returns the election's name: its keys live under Name() + "/".
func (e *Election) Name() string { return e.name }

// Campaign enters the session as a candidate with value and waits until
// it leads. Candidates are elected in the order they entered; the leader
// is the one with the oldest key, and its token is that key's create
// revision. Campaign fails with an error wrapping lock.ErrLost when the
// candidate's key or session is lost while it waits, and with the
// context's error when ctx ends; either way the candidacy is withdrawn.
// A candidacy this session's lease left before a restart is taken over
// (its value updated).
func (e *Election) Campaign(ctx context.Context, value string) (*Leadership, error) {
	return e.enter(ctx, value, false)
}

// Resume takes over the candidacy (or leadership) that a process left
// before it restarted with the same lease (session.WithLease), keeping its
// value and its token, and waits until it leads, as Campaign does. Without
// such a candidacy it fails with ErrNoCandidacy.
func (e *Election) Resume(ctx context.Context) (*Leadership, error) {
	return e.enter(ctx, "", true)
}

func (e *Election) enter(ctx context.Context, value string, resume bool) (*Leadership, error) {
	if e.name == "" {
		return nil, ErrEmptyName
	}
	e.mu.Lock()
	if e.entering || (e.current != nil && e.current.m.Err() == nil) {
		e.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", e.name, ErrCampaigning)
	}
	e.entering, e.current = true, nil
	e.mu.Unlock()

	m := lock.NewMutex(e.s, e.name, lock.WithLeaseKey(), lock.WithValue(value))
	var err error
	if resume {
		_, err = m.Resume(ctx)
		if err == nil {
			value, err = e.readValue(ctx, m)
		}
	} else {
		_, err = m.Lock(ctx)
	}
	var l *Leadership
	if err == nil {
		l = &Leadership{e: e, m: m, key: m.Key(), token: m.Token(), header: m.Header(), value: value}
	}
	e.mu.Lock()
	e.entering, e.current = false, l
	e.mu.Unlock()
	if err != nil {
		if errors.Is(err, lock.ErrNoKey) {
			err = fmt.Errorf("%w: %w", ErrNoCandidacy, err)
		}
		return nil, fmt.Errorf("campaign: %w", err)
	}
	return l, nil
}

func (e *Election) readValue(ctx context.Context, m *lock.Mutex) (string, error) {
	resp, err := e.s.Client().Txn(ctx).If(m.IsOwner()).Then(clientv3.OpGet(m.Key())).Commit()
	if err != nil {
		m.Unlock(ctx)
		return "", fmt.Errorf("read resumed value: %w", err)
	}
	if !resp.Succeeded {
		m.Unlock(ctx)
		return "", fmt.Errorf("read resumed value: %w", ErrNotLeader)
	}
	return string(resp.Responses[0].GetResponseRange().Kvs[0].Value), nil
}

// resigned forgets l, if it is still the current leadership.
func (e *Election) resigned(l *Leadership) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current == l {
		e.current = nil
	}
}

// Leader returns the current leader; ErrNoLeader if there is none.
func (e *Election) Leader(ctx context.Context) (LeaderInfo, error) {
	return Leader(ctx, e.s.Client(), e.name)
}

// Observe reports the leader and each change of it; see the function
// Observe.
func (e *Election) Observe(ctx context.Context) <-chan LeaderInfo {
	return Observe(ctx, e.s.Client(), e.name)
}

// Leadership is a won election: valid until Resign, or until Done closes.
// Its methods are safe for concurrent use.
type Leadership struct {
	e      *Election
	m      *lock.Mutex
	key    string
	token  lock.Token
	header *pb.ResponseHeader

	mu    sync.Mutex // guards value
	value string
}

// Token returns the leadership's fencing token, the create revision of the
// leader's key: strictly increasing across successive leaders.
func (l *Leadership) Token() lock.Token { return l.token }

// Header returns the header of the response that showed this candidate
// leading: it led at the header's revision.
func (l *Leadership) Header() *pb.ResponseHeader { return l.header }

// Key returns the leader's key, NAME/<lease-hex>.
func (l *Leadership) Key() string { return l.key }

// Value returns the value last proclaimed (or campaigned with).
func (l *Leadership) Value() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.value
}

// Done returns a channel closed when the leadership ends: Resign, the key
// deleted, or the session ended.
func (l *Leadership) Done() <-chan struct{} { return l.m.Done() }

// Err returns nil while leading, and an error wrapping ErrNotLeader (and
// the cause) afterwards.
func (l *Leadership) Err() error {
	if err := l.m.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	return nil
}

// IsLeader returns a comparison that holds while this leadership lasts
// (its key exists with its token): put it in a Txn's If to fence a write
// on being the leader.
func (l *Leadership) IsLeader() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(l.key), "=", int64(l.token))
}

// Proclaim replaces the leader's value without a new election; observers
// see the change. It fails with ErrNotLeader once the leadership ended.
func (l *Leadership) Proclaim(ctx context.Context, value string) error {
	s := l.e.s
	resp, err := s.Client().Txn(ctx).If(l.IsLeader()).
		Then(clientv3.OpPut(l.Key(), value, clientv3.WithLease(s.Lease()))).Commit()
	if err != nil {
		return fmt.Errorf("%s: proclaim: %w", l.e.name, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s: proclaim: %w", l.e.name, ErrNotLeader)
	}
	l.mu.Lock()
	l.value = value
	l.mu.Unlock()
	return nil
}

// Resign deletes the leader's key, so that the next candidate is elected,
// and frees the Election for another Campaign. It fails with an error
// wrapping ErrNotLeader if the leadership had already ended; on a request
// error nothing changes and it may be retried.
func (l *Leadership) Resign(ctx context.Context) error {
	err := l.m.Unlock(ctx)
	if err != nil && !errors.Is(err, lock.ErrLost) && !errors.Is(err, lock.ErrNotHeld) {
		return fmt.Errorf("resign: %w", err)
	}
	l.e.resigned(l)
	if err != nil {
		return fmt.Errorf("resign: %w: %w", ErrNotLeader, err)
	}
	return nil
}
