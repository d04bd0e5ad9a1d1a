package recipes

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/concordkv/concord/session"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Group is a membership list: members join with a session, so a member
// whose process dies leaves when its lease expires. Anyone with a client
// can list the members or watch them change.
type Group struct {
	cli    *clientv3.Client
	name   string
	prefix string
}

// NewGroup returns the group name. Members are NAME/<id>, with the
// member's value and its session's lease.
func NewGroup(cli *clientv3.Client, name string) *Group {
	return &Group{cli: cli, name: name, prefix: name + "/"}
}

// Member is one member of a group.
type Member struct {
	ID    string
	Value string
	Lease clientv3.LeaseID
	// Joined is the revision at which the member joined (its key's create
	// revision).
	Joined int64
}

func (g *Group) member(kv *mvccpb.KeyValue) Member {
	return Member{
		ID:     strings.TrimPrefix(string(kv.Key), g.prefix),
		Value:  string(kv.Value),
		Lease:  clientv3.LeaseID(kv.Lease),
		Joined: kv.CreateRevision,
	}
}

// Join adds a member id with value, bound to session s; ErrMemberExists if
// id is a member already. The ID may not be empty nor contain "/".
func (g *Group) Join(ctx context.Context, s *session.Session, id, value string) (*Membership, error) {
	if g.name == "" || id == "" || strings.Contains(id, "/") {
		return nil, fmt.Errorf("group %q member %q: %w", g.name, id, ErrInvalid)
	}
	key := g.prefix + id
	resp, err := s.Client().Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, value, clientv3.WithLease(s.Lease()))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		return nil, fmt.Errorf("group %s: join %s: %w", g.name, id, err)
	}
	if !resp.Succeeded {
		kv := resp.Responses[0].GetResponseRange().Kvs[0]
		if clientv3.LeaseID(kv.Lease) != s.Lease() {
			return nil, fmt.Errorf("group %s: %w: %s", g.name, ErrMemberExists, id)
		}
		// Ours already: the answer to an earlier Join was lost, or a process
		// restarted with its lease. Take it over.
		m := &Membership{g: g, s: s, hold: s.Hold(key, kv.CreateRevision, resp.Header.Revision), member: g.member(kv)}
		if string(kv.Value) != value {
			if err := m.Update(ctx, value); err != nil {
				m.hold.Stop()
				return nil, err
			}
		}
		return m, nil
	}
	rev := resp.Header.Revision
	return &Membership{
		g:      g,
		s:      s,
		hold:   s.Hold(key, rev, rev),
		member: Member{ID: id, Value: value, Lease: s.Lease(), Joined: rev},
	}, nil
}

// Members returns the current members, sorted by ID.
func (g *Group) Members(ctx context.Context) ([]Member, error) {
	resp, err := g.cli.Get(ctx, g.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("group %s: members: %w", g.name, err)
	}
	ms := make([]Member, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		ms[i] = g.member(kv) // keys come sorted: NAME/<id>
	}
	return ms, nil
}

// GroupView is the membership of a group after a change.
type GroupView struct {
	// Revision is the store revision of this membership.
	Revision int64
	// Members are all members, sorted by ID.
	Members []Member
	// Joined, Updated and Left are the members that joined, changed their
	// value, or left at this revision (in the first view: every member
	// joined).
	Joined, Updated, Left []Member
}

// Watch reports the membership now, then after every revision that
// changes it, in order and without gaps (unless the history it needs was
// compacted because it fell far behind: then it reads the current
// membership and reports the difference). The channel is unbuffered and
// closed when ctx ends.
func (g *Group) Watch(ctx context.Context) <-chan GroupView {
	ch := make(chan GroupView)
	go g.watch(ctx, ch)
	return ch
}

func (g *Group) watch(ctx context.Context, ch chan<- GroupView) {
	defer close(ch)
	members := map[string]Member{} // by ID; owned by this goroutine
	send := func(v GroupView) bool {
		v.Members = slices.SortedFunc(maps.Values(members), func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
		select {
		case ch <- v:
			return true
		case <-ctx.Done():
			return false
		}
	}
	first := true
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		resp, err := g.cli.Get(ctx, g.prefix, clientv3.WithPrefix())
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		// Diff the read against what was known: all of it the first time,
		// what a broken watch missed afterwards.
		v := GroupView{Revision: resp.Header.Revision}
		now := map[string]Member{}
		for _, kv := range resp.Kvs {
			m := g.member(kv)
			now[m.ID] = m
			old, ok := members[m.ID]
			switch {
			case !ok || old.Joined != m.Joined:
				v.Joined = append(v.Joined, m)
			case old.Value != m.Value:
				v.Updated = append(v.Updated, m)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(members)) {
			if m, ok := now[id]; !ok || m.Joined != members[id].Joined {
				v.Left = append(v.Left, members[id])
			}
		}
		members = now
		if (first || len(v.Joined)+len(v.Updated)+len(v.Left) > 0) && !send(v) {
			return
		}
		first = false
		if !g.follow(ctx, members, resp.Header.Revision, send) {
			return
		}
	}
}

// follow applies watch events from rev+1 to members, sending a view after
// each revision. It returns false when ctx ends or a send fails, true when
// the watch broke.
func (g *Group) follow(ctx context.Context, members map[string]Member, rev int64, send func(GroupView) bool) bool {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var v GroupView
	for wr := range g.cli.Watch(wctx, g.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if wr.Err() != nil {
			return ctx.Err() == nil
		}
		for i, ev := range wr.Events {
			m := g.member(ev.Kv)
			old, known := members[m.ID]
			switch {
			case ev.Type == mvccpb.DELETE:
				if known {
					v.Left = append(v.Left, old)
					delete(members, m.ID)
				}
			case !known || old.Joined != m.Joined:
				if known {
					v.Left = append(v.Left, old)
				}
				v.Joined = append(v.Joined, m)
				members[m.ID] = m
			default:
				v.Updated = append(v.Updated, m)
				members[m.ID] = m
			}
			if i == len(wr.Events)-1 || wr.Events[i+1].Kv.ModRevision != ev.Kv.ModRevision {
				v.Revision = ev.Kv.ModRevision
				if !send(v) {
					return false
				}
				v = GroupView{}
			}
		}
	}
	return ctx.Err() == nil
}

// Membership is a joined member: valid until Leave, or until Done closes.
type Membership struct {
	g    *Group
	s    *session.Session
	hold *session.Hold

	mu          sync.Mutex // guards the fields below
	member      Member
	left        bool // Leave deleted the key
	leaveFailed bool // a Leave request failed: it may have been applied
}

// Member returns the member as joined (and updated).
func (m *Membership) Member() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.member
}

// Done returns a channel closed when the membership ends: Leave, the key
// deleted, or the session ended.
func (m *Membership) Done() <-chan struct{} { return m.hold.Done() }

// Err is nil while a member, ErrNotHeld after Leave, and wraps ErrLost
// (and the cause) once the membership was lost.
func (m *Membership) Err() error {
	m.mu.Lock()
	left := m.left
	m.mu.Unlock()
	switch {
	case left:
		return ErrNotHeld
	case m.hold.Err() != nil:
		return lost(m.hold)
	}
	return nil
}

// Update changes the member's value; it fails with ErrLost once the
// membership ended.
func (m *Membership) Update(ctx context.Context, value string) error {
	resp, err := m.s.Client().Txn(ctx).If(m.hold.Cmp()).
		Then(clientv3.OpPut(m.hold.Key(), value, clientv3.WithLease(m.s.Lease()))).Commit()
	if err != nil {
		return fmt.Errorf("group %s: update %s: %w", m.g.name, m.hold.Key(), err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("group %s: update %s: %w", m.g.name, m.hold.Key(), ErrLost)
	}
	m.mu.Lock()
	m.member.Value = value
	m.mu.Unlock()
	return nil
}

// Leave removes the member. It returns an error wrapping ErrLost if the
// membership had already ended; on a request error nothing changes.
func (m *Membership) Leave(ctx context.Context) error {
	resp, err := m.s.Client().Txn(ctx).If(m.hold.Cmp()).Then(clientv3.OpDelete(m.hold.Key())).Commit()
	if err != nil {
		m.mu.Lock()
		m.leaveFailed = true
		m.mu.Unlock()
		return fmt.Errorf("group %s: leave: %w", m.g.name, err)
	}
	m.hold.Stop()
	m.mu.Lock()
	wasLeft := m.left || m.leaveFailed
	m.left = true
	m.mu.Unlock()
	if !resp.Succeeded && !wasLeft {
		return fmt.Errorf("group %s: leave: %w", m.g.name, ErrLost)
	}
	return nil
}
