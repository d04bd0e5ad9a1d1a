package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/concordkv/concord/core/raftnode"
)

// InitialMember is one entry of etcd's --initial-cluster.
type InitialMember struct {
	Name     string
	PeerURLs []string
}

// Config is everything a member needs to start. It is complete before New:
// nothing is set afterwards.
type Config struct {
	// Name is this member's human-readable name (etcd's --name).
	Name string
	// DataDir holds the member's database, Raft log and snapshots.
	DataDir string
	// ClientURLs are advertised to clients (--advertise-client-urls).
	ClientURLs []string
	// PeerURLs are advertised to peers (--initial-advertise-peer-urls).
	PeerURLs []string
	// ListenPeerAddr is the host:port the peer listener binds
	// (from --listen-peer-urls).
	ListenPeerAddr string

	// InitialCluster lists the members of a new cluster
	// (--initial-cluster), this one included.
	InitialCluster []InitialMember
	// InitialClusterToken makes member and cluster IDs unique to a cluster.
	InitialClusterToken string
	// NewCluster is true for --initial-cluster-state=new: bootstrap Raft
	// from InitialCluster. False joins a running cluster this member was
	// added to (member add) first.
	NewCluster bool

	// HeartbeatInterval and ElectionTimeout are etcd's Raft timings.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// SnapshotCount is how many applied entries trigger a Raft snapshot.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries stay in the Raft log after
	// a snapshot, for slow followers to catch up from.
	SnapshotCatchUpEntries uint64
	// MaxLearners bounds the learners the cluster holds at once.
	MaxLearners int
	// StrictReconfigCheck refuses member changes that would leave too few
	// started voters for a quorum (ErrNotEnoughStarted), or that need voters
	// the leader has not heard from in the last 5 seconds
	// (raftnode.ErrUnhealthy, etcd's "unhealthy cluster"; see
	// raftnode.Config.StrictReconfigCheck).
	StrictReconfigCheck bool
	// AutoCompactionPeriod (etcd's periodic mode) keeps this much history;
	// AutoCompactionRevisions (revision mode) keeps this many revisions.
	// Zero turns either off; the leader compacts.
	AutoCompactionPeriod    time.Duration
	AutoCompactionRevisions int64
	// MaxRequestBytes is the largest proposal accepted.
	MaxRequestBytes int
	// QuotaBackendBytes is reported by Status (enforcement belongs to the
	// operations issue).
	QuotaBackendBytes int64

	// WatchProgressNotifyInterval is how often idle watchers that asked for
	// progress notifications get one (raised to the hub's minimum; 0 is
	// etcd's 10 minutes).
	WatchProgressNotifyInterval time.Duration

	// LeaseRevokeRate is the most expired leases the leader revokes per
	// second (lease-revoke-rate); LeaseCheckpointInterval bounds how far
	// the remaining TTLs in the log lag (see core/lease). 0 takes the lease
	// package's defaults.
	LeaseRevokeRate         int
	LeaseCheckpointInterval time.Duration

	// BackendBatchInterval and BackendBatchLimit group bbolt commits.
	BackendBatchInterval time.Duration
	BackendBatchLimit    int

	// PeerNetwork is how the peer port listens and dials; nil is plain TCP.
	// Tests put a partitionable network here.
	PeerNetwork raftnode.Network

	Logger *slog.Logger
}

// DefaultConfig returns etcd's defaults for a single member named "default".
func DefaultConfig() Config {
	return Config{
		Name:                   "default",
		DataDir:                "default.etcd",
		ClientURLs:             []string{"http://localhost:2379"},
		PeerURLs:               []string{"http://localhost:2380"},
		ListenPeerAddr:         "localhost:2380",
		InitialCluster:         []InitialMember{{Name: "default", PeerURLs: []string{"http://localhost:2380"}}},
		InitialClusterToken:    "etcd-cluster",
		NewCluster:             true,
		HeartbeatInterval:      100 * time.Millisecond,
		ElectionTimeout:        time.Second,
		SnapshotCount:          10000,
		SnapshotCatchUpEntries: 5000,
		MaxLearners:            1,
		StrictReconfigCheck:    true,
		MaxRequestBytes:        1536 * 1024,
		QuotaBackendBytes:      2 << 30,
		BackendBatchInterval:   100 * time.Millisecond,
		BackendBatchLimit:      10000,
	}
}

// Validate checks the fields and their relations.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is empty"))
	}
	if len(c.PeerURLs) == 0 {
		errs = append(errs, errors.New("no advertised peer URL"))
	}
	for _, u := range append(append([]string(nil), c.PeerURLs...), c.ClientURLs...) {
		if _, err := hostPort(u); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ListenPeerAddr == "" {
		errs = append(errs, errors.New("no peer listen address"))
	}
	if c.NewCluster {
		found := false
		for _, m := range c.InitialCluster {
			if m.Name == c.Name {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("member %q is not in the initial cluster", c.Name))
		}
	}
	if c.HeartbeatInterval <= 0 || c.ElectionTimeout < 5*c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("election timeout %v must be at least 5 heartbeat intervals (%v)", c.ElectionTimeout, c.HeartbeatInterval))
	}
	if c.MaxRequestBytes <= 0 {
		errs = append(errs, errors.New("max request bytes must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("server config: %w", err)
	}
	return nil
}

// hostPort returns the host:port of a URL such as http://127.0.0.1:2380.
func hostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad URL %q: %w", raw, err)
	}
	if u.Host == "" || u.Port() == "" {
		return "", fmt.Errorf("bad URL %q: want scheme://host:port", raw)
	}
	return u.Host, nil
}
