package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
)

// Node is one member of a raft group: it owns the peer port, raft, its
// stores and the goroutines that pack proposals and confirm reads.
type Node struct {
	cfg     Config
	logger  *slog.Logger
	addr    string // advertised peer address (raft ServerAddress)
	network Network

	raft      *raft.Raft
	fsm       *fsm
	applied   *appliedTracker
	stores    *stores
	transport *raft.NetworkTransport
	mux       *peerMux
	grpc      *grpc.Server

	proposals chan *proposal    // Propose → proposers
	reads     chan *readRequest // leader read index requests → readLoop
	// stamp lets heartbeats carry the commit index; nudges (appending
	// dropped to zero) ask nudgeLoop for a heartbeat round that carries it.
	stamp     *commitStamp
	contacts  *peerContacts // followers' last answers, for checkContact
	appending atomic.Int64
	nudges    chan struct{}
	// remoteReads are a follower's read barriers → remoteReadLoops
	remoteReads chan *readRequest
	notifyCh    chan bool // raft's leadership notifications → notifyLoop

	// life ends first in Close (stopping is its Done channel): new requests
	// fail with ErrStopped and the background goroutines wind down.
	life       context.Context
	endLife    context.CancelFunc
	stopping   <-chan struct{}
	notifyDone chan struct{} // closed after raft has shut down
	bg         sync.WaitGroup

	conns peerConns

	readRounds atomic.Uint64 // leadership confirmations made for read barriers

	removed     chan struct{} // closed when this member learns it was removed
	removedOnce sync.Once

	raftDown     chan struct{} // closed once raft.Shutdown has returned
	raftDownOnce sync.Once

	closeOnce sync.Once
	closeErr  error
}

// Server is one member of the raft configuration.
type Server struct {
	ID    uint64
	Addr  string // peer host:port
	Voter bool   // false for a learner (raft non-voter)
}

// Status is a point-in-time view of this node's raft state.
type Status struct {
	ID           uint64
	Leader       uint64 // 0 when no leader is known
	LeaderAddr   string
	IsLeader     bool
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64 // applied by the state machine
	LastLogIndex uint64
	State        string // raft's state: Follower, Candidate, Leader, Shutdown
}

// remoteReadLoops is how many read-index RPCs a follower keeps in flight.
const remoteReadLoops = 2

// proposersPerNode is how many batches a node keeps in flight: one is
// replicated while the next fills.
const proposersPerNode = 2

// Open opens the stores, starts the peer port, the transport and raft. It
// does not bootstrap: call Bootstrap on a new cluster's members, or have
// an existing member add this one. ctx bounds nothing that blocks today
// and is kept for future TLS handshakes and store recovery.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Network == nil {
		cfg.Network = TCPNetwork{}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("member", fmt.Sprintf("%x", cfg.ID))
	hlog := newHclogAdapter(logger, "raft")

	n := &Node{
		cfg:         cfg,
		logger:      logger,
		network:     cfg.Network,
		proposals:   make(chan *proposal, 4*cfg.MaxProposalBatch),
		reads:       make(chan *readRequest, 1024),
		remoteReads: make(chan *readRequest, 1024),
		stamp:       newCommitStamp(),
		contacts:    newPeerContacts(),
		nudges:      make(chan struct{}, 1),
		notifyCh:    make(chan bool, 16),
		notifyDone:  make(chan struct{}),
		removed:     make(chan struct{}),
		raftDown:    make(chan struct{}),
	}
	n.life, n.endLife = context.WithCancel(context.Background())
	n.stopping = n.life.Done()
	n.conns.init(cfg.Network)

	var cleanup []func()
	fail := func(err error) (*Node, error) {
		n.endLife()
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}

	st, err := openStores(cfg.Dir, cfg.LogStore, cfg.walSegmentSize, hlog)
	if err != nil {
		return fail(err)
	}
	n.stores = st
	cleanup = append(cleanup, func() { _ = st.close() })

	n.applied = newAppliedTracker(cfg.StateMachine.AppliedIndex())
	n.fsm = &fsm{sm: cfg.StateMachine, applied: n.applied, logger: logger, smApplied: cfg.StateMachine.AppliedIndex()}
	if err := n.catchUpFromSnapshot(); err != nil {
		return fail(err)
	}

	ln, err := cfg.Network.Listen(cfg.ListenAddr)
	if err != nil {
		return fail(fmt.Errorf("listen on peer address %s: %w", cfg.ListenAddr, err))
	}
	n.addr = cfg.AdvertiseAddr
	if n.addr == "" {
		n.addr = ln.Addr().String()
	}
	n.mux = newPeerMux(ln, addrString(n.addr), logger)
	cleanup = append(cleanup, func() { _ = n.mux.close() })

	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  raftStream{subListener: n.mux.raft, network: cfg.Network},
		MaxPool: 3,
		// 1 turns off pipelined replication. hashicorp/raft v1.8.0's
		// pipeline deadlocks when a follower rejects an append (a leader
		// change, a log mismatch): the decoder exits, the sender blocks on
		// a channel nobody reads, and that follower gets no entries again
		// (nor can raft shut down). Seen in this package's transfer and
		// kill tests; also reported by grafana/pyroscope#5518.
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          hlog.Named("transport"),
	})
	cleanup = append(cleanup, func() { _ = n.transport.Close() })

	n.grpc = grpc.NewServer(peerServerOptions()...)
	n.grpc.RegisterService(peerServiceDesc(), peerServer{n: n})
	if cfg.RegisterPeerServices != nil {
		cfg.RegisterPeerServices(n.grpc)
	}
	cleanup = append(cleanup, n.grpc.Stop)

	rc := cfg.raftConfig()
	rc.Logger = hlog
	rc.NotifyCh = n.notifyCh
	// Heartbeats read the commit index once raft exists (no stamp before).
	var created atomic.Pointer[raft.Raft]
	n.stamp.commitIndex = func() uint64 {
		if r := created.Load(); r != nil {
			return r.CommitIndex()
		}
		return 0
	}
	n.stamp.afterLateMatch = func(index uint64) {
		if n.appending.Load() == 0 && n.stamp.commitIndex() >= index {
			n.nudgeCommit()
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, st.log, st.stable, st.snaps, mainLoopHeartbeats{n.transport, n.stamp, n.contacts})
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	n.raft = r
	created.Store(r)

	n.bg.Go(func() {
		if err := n.grpc.Serve(n.mux.grpc); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.logger.Debug("peer gRPC server stopped", "error", err)
		}
	})
	n.bg.Go(n.notifyLoop)
	for range proposersPerNode {
		n.bg.Go(n.proposeLoop)
	}
	n.bg.Go(n.readLoop)
	n.bg.Go(n.nudgeLoop)
	for range remoteReadLoops {
		n.bg.Go(n.remoteReadLoop)
	}
	n.bg.Go(n.watchRemoval)
	n.mux.start()
	logger.Info("raft node started", "peer-addr", n.addr, "dir", cfg.Dir, "log-store", cfg.LogStore)
	return n, nil
}

// catchUpFromSnapshot restores the state machine from the newest snapshot
// when the state machine is behind it (its data was lost or replaced):
// raft does not restore on start and never replays entries a snapshot
// covers.
func (n *Node) catchUpFromSnapshot() error {
	list, err := n.stores.snaps.List()
	if err != nil {
		return fmt.Errorf("list raft snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil
	}
	meta, rc, err := n.stores.snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open raft snapshot %s: %w", list[0].ID, err)
	}
	defer func() { _ = rc.Close() }()
	index, err := readSnapshotHeader(rc)
	if err != nil {
		return fmt.Errorf("raft snapshot %s: %w", meta.ID, err)
	}
	if n.fsm.smApplied >= index {
		return nil
	}
	n.logger.Warn("state machine is behind the newest raft snapshot; restoring it",
		"state-machine-applied", n.fsm.smApplied, "snapshot-index", index)
	return n.fsm.restoreAt(index, rc)
}

// Bootstrap writes the initial configuration of a new cluster. Every
// initial member calls it with the same list. On a node that already has
// raft state it returns ErrAlreadyBootstrapped and changes nothing.
func (n *Node) Bootstrap(servers []Server) error {
	if len(servers) == 0 {
		return errors.New("bootstrap: no servers")
	}
	conf := raft.Configuration{Servers: make([]raft.Server, len(servers))}
	for i, s := range servers {
		suffrage := raft.Voter
		if !s.Voter {
			suffrage = raft.Nonvoter
		}
		conf.Servers[i] = raft.Server{Suffrage: suffrage, ID: serverID(s.ID), Address: raft.ServerAddress(s.Addr)}
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil {
		if errors.Is(err, raft.ErrCantBootstrap) {
			return ErrAlreadyBootstrapped
		}
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	return nil
}

// ID returns this member's ID.
func (n *Node) ID() uint64 { return n.cfg.ID }

// Addr returns the advertised peer address.
func (n *Node) Addr() string { return n.addr }

// notifyLoop delivers leadership transitions to OnLeaderChange, in order,
// from this one goroutine. It runs until raft has shut down, so the last
// transition (losing leadership on shutdown) is delivered too.
func (n *Node) notifyLoop() {
	deliver := func(isLeader bool) {
		term := n.raft.CurrentTerm()
		n.logger.Info("leadership changed", "is-leader", isLeader, "term", term)
		if n.cfg.OnLeaderChange != nil {
			n.cfg.OnLeaderChange(isLeader, term)
		}
	}
	for {
		select {
		case isLeader := <-n.notifyCh:
			deliver(isLeader)
		case <-n.notifyDone:
			for {
				select {
				case isLeader := <-n.notifyCh:
					deliver(isLeader)
				default:
					return
				}
			}
		}
	}
}

// Term returns the current raft term; cheaper than Status for callers that
// need only it (every response header carries it).
func (n *Node) Term() uint64 { return n.raft.CurrentTerm() }

// Status returns this node's view of the raft group.
func (n *Node) Status() Status {
	addr, id := n.raft.LeaderWithID()
	var leader uint64
	if id != "" {
		if v, err := memberID(id); err == nil {
			leader = v
		}
	}
	state := n.raft.State()
	return Status{
		ID:           n.cfg.ID,
		Leader:       leader,
		LeaderAddr:   string(addr),
		IsLeader:     state == raft.Leader,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.applied.Index(),
		LastLogIndex: n.raft.LastIndex(),
		State:        state.String(),
	}
}

// WaitApplied blocks until the state machine has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	return n.applied.wait(ctx, index, n.stopping)
}

// leader returns the current leader's address and ID, waiting up to about
// an election timeout for one to be known.
func (n *Node) leader(ctx context.Context) (string, uint64, error) {
	deadline := time.Now().Add(n.cfg.ElectionTimeout)
	for {
		addr, id := n.raft.LeaderWithID()
		if id != "" && addr != "" {
			mid, err := memberID(id)
			if err != nil {
				return "", 0, err
			}
			return string(addr), mid, nil
		}
		if err := n.pause(ctx, deadline); err != nil {
			return "", 0, err
		}
	}
}

// retryPause is how long a request waits before asking again for a leader.
const retryPause = 10 * time.Millisecond

// pause waits retryPause; it fails with ErrNoLeader past deadline, with
// the context's error or with ErrStopped.
func (n *Node) pause(ctx context.Context, deadline time.Time) error {
	if err := n.checkRunning(); err != nil {
		return err
	}
	if !time.Now().Before(deadline) {
		return ErrNoLeader
	}
	t := time.NewTimer(retryPause)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	case <-n.stopping:
		return ErrStopped
	}
}

// DialPeer returns a new gRPC connection to the internal services on the
// peer port at addr, through this node's Network. The caller closes it.
func (n *Node) DialPeer(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	return DialPeer(ctx, n.network, addr)
}

// LeaderConn returns a connection to the current leader's peer port (this
// node's own when it leads) and the leader's ID, waiting up to about an
// election timeout for a leader. The Node owns the connection: do not
// close it.
func (n *Node) LeaderConn(ctx context.Context) (*grpc.ClientConn, uint64, error) {
	addr, id, err := n.leader(ctx)
	if err != nil {
		return nil, 0, err
	}
	cc, err := n.conns.get(addr)
	if err != nil {
		return nil, 0, err
	}
	return cc, id, nil
}

// Close stops the node. A leader with other voters first hands leadership
// to one of them (bounded by ctx and raft's own transfer timeout), so the
// cluster does not wait an election timeout. Then raft, the peer port and
// the stores are closed and every goroutine has ended. The StateMachine is
// left for the caller to close afterwards.
func (n *Node) Close(ctx context.Context) error {
	return n.shutdown(ctx, true)
}

// shutdown is Close; transfer=false stops like a crash would, as far as
// the rest of the cluster can tell (tests use it to kill a leader).
func (n *Node) shutdown(ctx context.Context, transfer bool) error {
	n.closeOnce.Do(func() {
		var errs []error
		if transfer {
			if err := n.transferBeforeClose(ctx); err != nil {
				n.logger.Warn("leadership transfer before close failed", "error", err)
			}
		}
		n.endLife()
		// Start raft's shutdown, then cut its connections before waiting
		// for it: a replication goroutine stuck on a silent peer would
		// otherwise hold the shutdown for the transport's I/O timeout.
		shutdown := n.raft.Shutdown()
		n.grpc.Stop()
		n.transport.CloseStreams()
		if err := n.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
		if err := n.mux.close(); err != nil {
			errs = append(errs, err)
		}
		if err := shutdown.Error(); err != nil {
			errs = append(errs, fmt.Errorf("shut down raft: %w", err))
		}
		n.raftDownOnce.Do(func() { close(n.raftDown) })
		close(n.notifyDone)
		n.bg.Wait()
		n.conns.closeAll()
		if err := n.stores.close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft log store: %w", err))
		}
		n.closeErr = errors.Join(errs...)
		n.logger.Info("raft node stopped")
	})
	return n.closeErr
}

// transferBeforeClose hands leadership to another voter if this node leads
// and has one.
func (n *Node) transferBeforeClose(ctx context.Context) error {
	if n.raft.State() != raft.Leader {
		return nil
	}
	servers, err := n.Servers()
	if err != nil {
		return err
	}
	others := 0
	for _, s := range servers {
		if s.Voter && s.ID != n.cfg.ID {
			others++
		}
	}
	if others == 0 {
		return nil
	}
	return n.waitFuture(ctx, n.raft.LeadershipTransfer())
}

// shutdownRaft stops raft (idempotent) and then releases waitFuture.
func (n *Node) shutdownRaft() error {
	err := n.raft.Shutdown().Error()
	n.raftDownOnce.Do(func() { close(n.raftDown) })
	return err
}

// waitFuture waits for f, ctx, or raft's shutdown. hashicorp/raft queues
// Apply, Barrier, VerifyLeader and leadership-transfer requests in
// buffered channels and never answers what is still queued when it shuts
// down, so f.Error() alone could block forever. The goroutine left waiting
// in that case is the price of not hanging; it is bounded by the few
// requests queued at the moment raft stops.
func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctxError(ctx)
	case <-n.raftDown:
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

// peerConns caches gRPC connections to peers by address.
type peerConns struct {
	network Network
	mu      sync.Mutex // guards byAddr
	byAddr  map[string]*grpc.ClientConn
}

func (p *peerConns) init(network Network) {
	p.network = network
	p.byAddr = make(map[string]*grpc.ClientConn)
}

func (p *peerConns) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.byAddr[addr]; ok {
		return cc, nil
	}
	if p.byAddr == nil {
		return nil, ErrStopped
	}
	cc, err := DialPeer(context.Background(), p.network, addr)
	if err != nil {
		return nil, err
	}
	p.byAddr[addr] = cc
	return cc, nil
}

func (p *peerConns) closeAll() {
	p.mu.Lock()
	conns := p.byAddr
	p.byAddr = nil
	p.mu.Unlock()
	for _, cc := range conns {
		_ = cc.Close()
	}
}
