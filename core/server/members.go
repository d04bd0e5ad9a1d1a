package server

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// memberChange is a member-table update carried in the Raft log.
type memberChange struct {
	Op        string       `json:"op"`
	ClusterID uint64       `json:"cluster_id,omitempty"`
	Members   []memberInfo `json:"members,omitempty"` // op "init"
	Member    memberInfo   `json:"member"`            // other ops
}

const (
	opInit    = "init"    // seed the table of a new cluster, if still empty
	opAdd     = "add"     // member add (name and client URLs come later)
	opRemove  = "remove"  // member remove
	opPromote = "promote" // learner becomes voter
	opUpdate  = "update"  // new peer URLs
)

// memberInfo is one row of the member table, as stored and replicated.
type memberInfo struct {
	ID         uint64   `json:"id"`
	Name       string   `json:"name,omitempty"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls,omitempty"`
	IsLearner  bool     `json:"is_learner,omitempty"`
}

func (m memberInfo) proto() *pb.Member {
	return &pb.Member{
		ID:         m.ID,
		Name:       m.Name,
		PeerURLs:   slices.Clone(m.PeerURLs),
		ClientURLs: slices.Clone(m.ClientURLs),
		IsLearner:  m.IsLearner,
	}
}

// memberTable is the in-memory copy of the replicated member table. The
// applier changes it (and the backend) in log order; readers copy out.
type memberTable struct {
	mu        sync.RWMutex
	clusterID uint64
	members   map[uint64]memberInfo
}

func newMemberTable() *memberTable {
	return &memberTable{members: make(map[uint64]memberInfo)}
}

// ClusterID returns the cluster's ID, 0 until the table is seeded.
func (t *memberTable) ClusterID() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.clusterID
}

// Get returns one member.
func (t *memberTable) Get(id uint64) (memberInfo, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	m, ok := t.members[id]
	return m, ok
}

// List returns every member as the API shows them, ordered by ID.
func (t *memberTable) List() []*pb.Member {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*pb.Member, 0, len(t.members))
	for _, m := range t.members {
		out = append(out, m.proto())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// enoughStartedAfter is the started-members rule of the strict
// reconfiguration check, as etcd has it: after op (opAdd of a voter, or
// opRemove or opPromote of the member id), would at least a quorum of the
// voters have started (published their name)? An added voter has not
// started yet; a promoted learner counts as started; a removed voter no
// longer counts. Changes to learners need no quorum and always pass.
func (t *memberTable) enoughStartedAfter(op string, id uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	voters, started := 0, 0
	for _, m := range t.members {
		if !m.IsLearner {
			voters++
			if m.Name != "" {
				started++
			}
		}
	}
	target, ok := t.members[id]
	switch {
	case op == opAdd:
		voters++
	case op == opRemove && ok && !target.IsLearner:
		voters--
		if target.Name != "" {
			started--
		}
	case op == opPromote && ok && target.IsLearner:
		voters++
		started++
	default:
		return true
	}
	return started >= voters/2+1
}

func (t *memberTable) learnerCount() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, m := range t.members {
		if m.IsLearner {
			n++
		}
	}
	return n
}

// FindByPeerURL returns the member advertising one of urls.
func (t *memberTable) FindByPeerURL(urls []string) (memberInfo, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, m := range t.members {
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return m, true
			}
		}
	}
	return memberInfo{}, false
}

// apply validates and performs one change; it returns the rows to persist
// (nil value = delete) so that the caller writes them in the same backend
// batch as the applied index. Deterministic: every member computes the same.
func (t *memberTable) apply(c *memberChange) (put []memberInfo, del []uint64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch c.Op {
	case opInit:
		if t.clusterID != 0 {
			return nil, nil, nil // seeded already; a second seed is a no-op
		}
		t.clusterID = c.ClusterID
		for _, m := range c.Members {
			t.members[m.ID] = m
			put = append(put, m)
		}
		return put, nil, nil
	case opAdd:
		if _, ok := t.members[c.Member.ID]; ok {
			return nil, nil, ErrMemberExists
		}
		for _, m := range t.members {
			for _, u := range m.PeerURLs {
				if slices.Contains(c.Member.PeerURLs, u) {
					return nil, nil, ErrPeerURLExists
				}
			}
		}
		t.members[c.Member.ID] = c.Member
		return []memberInfo{c.Member}, nil, nil
	case opRemove:
		if _, ok := t.members[c.Member.ID]; !ok {
			return nil, nil, ErrMemberNotFound
		}
		delete(t.members, c.Member.ID)
		return nil, []uint64{c.Member.ID}, nil
	case opPromote:
		m, ok := t.members[c.Member.ID]
		if !ok {
			return nil, nil, ErrMemberNotFound
		}
		if !m.IsLearner {
			return nil, nil, ErrMemberNotLearner
		}
		m.IsLearner = false
		t.members[m.ID] = m
		return []memberInfo{m}, nil, nil
	case opUpdate:
		m, ok := t.members[c.Member.ID]
		if !ok {
			return nil, nil, ErrMemberNotFound
		}
		for _, o := range t.members {
			if o.ID == m.ID {
				continue
			}
			for _, u := range o.PeerURLs {
				if slices.Contains(c.Member.PeerURLs, u) {
					return nil, nil, ErrPeerURLExists
				}
			}
		}
		m.PeerURLs = slices.Clone(c.Member.PeerURLs)
		t.members[m.ID] = m
		return []memberInfo{m}, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: member op %q", errUnknownRequest, c.Op)
}

// setAttributes records a member's name and client URLs (etcd's
// ClusterMemberAttrSet, sent by each member once it runs).
func (t *memberTable) setAttributes(id uint64, name string, clientURLs []string) (memberInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.members[id]
	if !ok {
		return memberInfo{}, ErrMemberNotFound
	}
	m.Name, m.ClientURLs = name, slices.Clone(clientURLs)
	t.members[id] = m
	return m, nil
}

// reset replaces the whole table (after loading from the backend).
func (t *memberTable) reset(clusterID uint64, members []memberInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clusterID = clusterID
	t.members = make(map[uint64]memberInfo, len(members))
	for _, m := range members {
		t.members[m.ID] = m
	}
}

// computeMemberID derives a member ID the way etcd does: from the sorted
// peer URLs, the cluster token and, for members added at run time, the time
// of the add, so that IDs of an initial cluster agree on every member.
func computeMemberID(peerURLs []string, token string, now *time.Time) uint64 {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	b := []byte(strings.Join(urls, ""))
	b = append(b, token...)
	if now != nil {
		b = append(b, fmt.Sprint(now.Unix())...)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// computeClusterID derives the cluster ID from its initial member IDs.
func computeClusterID(ids []uint64) uint64 {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	b := make([]byte, 8*len(sorted))
	for i, id := range sorted {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// initialMembers returns the member rows of a new cluster's initial
// configuration, with IDs every member computes alike.
func initialMembers(cluster []InitialMember, token string) []memberInfo {
	out := make([]memberInfo, 0, len(cluster))
	for _, m := range cluster {
		out = append(out, memberInfo{
			ID:       computeMemberID(m.PeerURLs, token, nil),
			Name:     m.Name,
			PeerURLs: slices.Clone(m.PeerURLs),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
