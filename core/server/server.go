package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/concordkv/concord/core/backend"
	"github.com/concordkv/concord/core/lease"
	"github.com/concordkv/concord/core/mvcc"
	"github.com/concordkv/concord/core/raftnode"
	"github.com/concordkv/concord/core/watch"
)

// Server is one member of a Concord cluster: storage, state machine and
// Raft node, with the operations the etcd API serves.
type Server struct {
	cfg Config
	log *slog.Logger
	id  uint64

	node *raftnode.Node

	// mu guards the storage handles, which a snapshot install replaces.
	// Readers hold it shared for the length of a read; the applier holds it
	// shared while applying and exclusively while restoring.
	// Lock order: mu, then members.mu.
	mu      sync.RWMutex
	be      *backend.Backend
	kv      *mvcc.Store
	members *memberTable

	// hub outlives the store: every store openStorage opens feeds it.
	hub *watch.Hub
	// lessor outlives the store too (Recover reloads it); leaseRaft is its
	// view of the node, leaseFwd carries a follower's keepalives to the
	// leader.
	lessor    *lease.Lessor
	leaseRaft *leaseRaft
	leaseFwd  *renewForwarder

	published chan struct{} // closed once this member's attributes are in the table

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Paths inside the data dir follow etcd's layout where it has one.
func dbPath(dataDir string) string       { return filepath.Join(dataDir, "member", "snap", "db") }
func raftDir(dataDir string) string      { return filepath.Join(dataDir, "member", "raft") }
func identityPath(dataDir string) string { return filepath.Join(dataDir, "member", "identity.json") }

// New opens (or creates) the member's data and starts its Raft node. A new
// cluster is bootstrapped from cfg.InitialCluster; a joining member learns
// its ID from the running cluster; a restart resumes from disk.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, members: newMemberTable(), published: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(dbPath(cfg.DataDir)), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Before the store opens: it attaches its keys to the leases.
	if err := s.newLessor(); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			s.lessor.Close() // no lessor goroutine outlives a failed New
		}
	}()
	if err := s.openStorage(); err != nil {
		return nil, err
	}
	hasState, err := raftnode.HasState(raftDir(cfg.DataDir))
	if err != nil {
		s.closeStorage()
		return nil, fmt.Errorf("inspect raft dir: %w", err)
	}
	id, err := s.resolveIdentity(ctx, hasState)
	if err != nil {
		s.closeStorage()
		return nil, err
	}
	s.id = id
	s.log = log.With("member", fmt.Sprintf("%x", id))
	// Before Raft applies anything, so that the hub sees every revision.
	if s.hub, err = s.newWatchHub(); err != nil {
		s.closeStorage()
		return nil, err
	}

	rcfg := raftnode.DefaultConfig()
	rcfg.ID = id
	rcfg.Dir = raftDir(cfg.DataDir)
	rcfg.ListenAddr = cfg.ListenPeerAddr
	rcfg.AdvertiseAddr, _ = hostPort(cfg.PeerURLs[0])
	if cfg.PeerNetwork != nil {
		rcfg.Network = cfg.PeerNetwork
	}
	rcfg.StrictReconfigCheck = cfg.StrictReconfigCheck
	rcfg.HeartbeatInterval = cfg.HeartbeatInterval
	rcfg.ElectionTimeout = cfg.ElectionTimeout
	rcfg.SnapshotThreshold = cfg.SnapshotCount
	if cfg.SnapshotCatchUpEntries > 0 {
		rcfg.TrailingLogs = cfg.SnapshotCatchUpEntries
	}
	rcfg.StateMachine = (*stateMachine)(s)
	rcfg.OnLeaderChange = func(isLeader bool, _ uint64) { s.lessor.SetLeader(isLeader) }
	rcfg.RegisterPeerServices = s.registerPeerServices
	rcfg.Logger = s.log
	node, err := raftnode.Open(ctx, rcfg)
	if err != nil {
		s.hub.Close()
		s.closeStorage()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	s.node = node
	s.leaseRaft.node.Store(node)
	if !hasState && cfg.NewCluster {
		var servers []raftnode.Server
		for _, m := range initialMembers(cfg.InitialCluster, cfg.InitialClusterToken) {
			addr, _ := hostPort(m.PeerURLs[0])
			servers = append(servers, raftnode.Server{ID: m.ID, Addr: addr, Voter: true})
		}
		if err := node.Bootstrap(servers); err != nil && !errors.Is(err, raftnode.ErrAlreadyBootstrapped) {
			s.Close(ctx)
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.wg.Go(func() { s.publish(runCtx) })
	if cfg.AutoCompactionPeriod > 0 || cfg.AutoCompactionRevisions > 0 {
		s.wg.Go(func() { s.runCompactor(runCtx) })
	}
	started = true
	return s, nil
}

// openStorage opens the backend, the store and the member table from the
// database file.
func (s *Server) openStorage() error {
	bcfg := backend.DefaultConfig(dbPath(s.cfg.DataDir))
	if s.cfg.BackendBatchInterval > 0 {
		bcfg.BatchInterval = s.cfg.BackendBatchInterval
	}
	if s.cfg.BackendBatchLimit > 0 {
		bcfg.BatchLimit = s.cfg.BackendBatchLimit
	}
	bcfg.Logger = s.log
	be, err := backend.Open(bcfg)
	if err != nil {
		return fmt.Errorf("open backend: %w", err)
	}
	if err := s.lessor.Recover(be); err != nil {
		be.Close()
		return err
	}
	kv, err := mvcc.Open(be, mvcc.Config{Logger: s.log, OnWrite: s.notifyWatch, Leases: s.lessor})
	if err != nil {
		be.Close()
		return fmt.Errorf("open store: %w", err)
	}
	clusterID, members, err := loadMembers(be)
	if err != nil {
		kv.Close()
		be.Close()
		return err
	}
	s.be, s.kv = be, kv
	s.members.reset(clusterID, members)
	return nil
}

func (s *Server) closeStorage() error {
	return errors.Join(s.kv.Close(), s.be.Close())
}

// ID returns this member's ID.
func (s *Server) ID() uint64 { return s.id }

// Ready is closed once this member has joined the cluster's member table
// with its name and client URLs, i.e. it can serve requests.
func (s *Server) Ready() <-chan struct{} { return s.published }

// Node returns the Raft node (for status and tests).
func (s *Server) Node() *raftnode.Node { return s.node }

// Close stops the member: Raft first (handing leadership over when it
// leads), then storage, which commits what it buffered.
func (s *Server) Close(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	// The lessor stops proposing before Raft stops.
	s.leaseFwd.close()
	errs := []error{s.lessor.Close()}
	if s.node != nil {
		errs = append(errs, s.node.Close(ctx))
	}
	// The hub before the store: its goroutines read the store.
	s.hub.Close()
	s.mu.Lock()
	errs = append(errs, s.closeStorage())
	s.mu.Unlock()
	return errors.Join(errs...)
}

// registerPeerServices adds what peers (not clients) call on the peer port:
// the member list, so that a joining member can learn its ID.
func (s *Server) registerPeerServices(g *grpc.Server) {
	registerPeerCluster(g, s)
	registerPeerLease(g, s)
}

// publish seeds the member table of a new cluster and records this
// member's name and client URLs, retrying until both are applied.
func (s *Server) publish(ctx context.Context) {
	backoff := s.cfg.HeartbeatInterval
	for {
		err := s.publishOnce(ctx)
		if err == nil {
			close(s.published)
			s.log.Info("published member attributes", "name", s.cfg.Name, "client-urls", s.cfg.ClientURLs)
			return
		}
		s.log.Debug("publish member attributes", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.ElectionTimeout)
	}
}

func (s *Server) publishOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	if s.cfg.NewCluster && s.members.ClusterID() == 0 {
		init := initialMembers(s.cfg.InitialCluster, s.cfg.InitialClusterToken)
		ids := make([]uint64, len(init))
		for i, m := range init {
			ids[i] = m.ID
		}
		if err := s.proposeMemberChange(ctx, &memberChange{Op: opInit, ClusterID: computeClusterID(ids), Members: init}); err != nil {
			return fmt.Errorf("seed member table: %w", err)
		}
	}
	if err := s.node.ReadBarrier(ctx); err != nil {
		return err
	}
	if m, ok := s.members.Get(s.id); ok && m.Name == s.cfg.Name && slices.Equal(m.ClientURLs, s.cfg.ClientURLs) {
		return nil
	}
	return s.setMemberAttributes(ctx)
}

// requestTimeout bounds one proposal, as etcd's request timeout does.
func (s *Server) requestTimeout() time.Duration {
	return 5*time.Second + 2*s.cfg.ElectionTimeout
}
