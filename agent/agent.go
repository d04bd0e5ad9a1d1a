package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/concordkv/concord/agent/concurrencyapi"
	"github.com/concordkv/concord/core/etcdapi"
	"github.com/concordkv/concord/core/raftnode"
	"github.com/concordkv/concord/core/server"
)

// Options are what a caller embedding an agent (tests, mostly) injects; they
// are not user configuration.
type Options struct {
	// ClientListeners, when set, are served instead of listening on
	// Network.ListenClientURLs (one listener per URL, in order).
	ClientListeners []net.Listener
	// PeerNetwork, when set, is how the peer port listens and dials (a
	// partitionable network in tests); nil is TCP.
	PeerNetwork raftnode.Network
	// Logger receives the agent's logs; nil discards them.
	Logger *slog.Logger
}

// Agent is one running Concord member: the replicated core and the etcd
// API on its client URLs.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	srv  *server.Server
	api  *etcdapi.API
	grpc *grpc.Server
	http *http.Server

	gatewayConn *grpc.ClientConn        // the gateway's connection to our own API; nil without it
	concurrency *concurrencyapi.Service // etcd's Lock and Election services, clients of our own API; nil without a client listener

	listeners []*clientListener
	wg        sync.WaitGroup // one goroutine per client listener and per serve loop
}

// Start starts a member from a validated configuration and returns once its
// client listeners serve; Ready tells when it has joined the cluster.
func Start(ctx context.Context, cfg Config, opts Options) (*Agent, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkImplemented(&cfg); err != nil {
		return nil, err
	}
	devTimings(&cfg)
	scfg, err := serverConfig(&cfg, opts.PeerNetwork, log)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log}

	lns := opts.ClientListeners
	if lns == nil {
		for _, raw := range cfg.Network.ListenClientURLs {
			u, err := url.Parse(raw)
			if err != nil {
				a.closeListeners(lns)
				return nil, fmt.Errorf("listen-client-urls %q: %w", raw, err)
			}
			ln, err := net.Listen("tcp", u.Host)
			if err != nil {
				a.closeListeners(lns)
				return nil, fmt.Errorf("listen on client URL %s: %w", raw, err)
			}
			lns = append(lns, ln)
		}
	}

	srv, err := server.New(ctx, scfg)
	if err != nil {
		a.closeListeners(lns)
		return nil, err
	}
	a.srv = srv

	acfg := etcdapi.DefaultConfig()
	acfg.KV, acfg.Cluster, acfg.Maintenance, acfg.Headers = srv, srv, srv, srv
	acfg.Watch = srv
	acfg.Lease = srv
	acfg.NoLeaderStreamTimeout = 3 * cfg.Raft.ElectionTimeout
	acfg.MaxTxnOps = cfg.Store.MaxTxnOps
	acfg.MaxRequestBytes = cfg.Store.MaxRequestBytes
	acfg.KeepaliveMinTime = cfg.GRPC.KeepAliveMinTime
	acfg.KeepaliveInterval = cfg.GRPC.KeepAliveInterval
	acfg.KeepaliveTimeout = cfg.GRPC.KeepAliveTimeout
	acfg.MaxConcurrentStreams = cfg.GRPC.MaxConcurrentStreams
	acfg.Logger = log
	api, err := etcdapi.New(acfg)
	if err != nil {
		srv.Close(ctx)
		a.closeListeners(lns)
		return nil, err
	}
	a.api = api
	a.grpc = grpc.NewServer(api.ServerOptions()...)
	api.Register(a.grpc)
	if len(lns) > 0 {
		ccfg := concurrencyapi.DefaultConfig()
		ccfg.Endpoint = lns[0].Addr().String()
		ccfg.Logger = log
		a.concurrency, err = concurrencyapi.New(ccfg)
		if err != nil {
			srv.Close(ctx)
			a.closeListeners(lns)
			return nil, err
		}
		a.concurrency.Register(a.grpc)
	}
	handler := a.httpHandler()
	if cfg.GRPC.EnableGateway && len(lns) > 0 {
		conn, err := dialSelf(lns[0].Addr().String())
		if err == nil {
			handler, err = a.withGateway(conn, handler)
		}
		if err != nil {
			a.concurrency.Close()
			srv.Close(ctx)
			a.closeListeners(lns)
			return nil, err
		}
		a.gatewayConn = conn
	}
	a.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}

	for _, ln := range lns {
		cl := newClientListener(ln)
		a.listeners = append(a.listeners, cl)
		a.wg.Go(cl.run)
		a.wg.Go(func() { a.grpc.Serve(cl.grpc) })
		a.wg.Go(func() { a.http.Serve(cl.http) })
	}
	return a, nil
}

// Ready is closed once the member has joined the cluster and serves.
func (a *Agent) Ready() <-chan struct{} { return a.srv.Ready() }

// Server returns the member's core.
func (a *Agent) Server() *server.Server { return a.srv }

// ClientAddrs returns the host:port of every client listener.
func (a *Agent) ClientAddrs() []string {
	out := make([]string, len(a.listeners))
	for i, l := range a.listeners {
		out[i] = l.Addr().String()
	}
	return out
}

// Close stops serving clients, then stops the member (leadership is handed
// over first when it leads).
func (a *Agent) Close(ctx context.Context) error {
	// Waiting Lock and Campaign calls and Observe streams never end on
	// their own either; they go first, while the API still serves the
	// deletes of the keys they leave.
	if a.concurrency != nil {
		sctx, cancel := context.WithTimeout(ctx, 2*a.cfg.Raft.ElectionTimeout+time.Second)
		if err := a.concurrency.Stop(sctx); err != nil {
			a.log.Warn("stop lock and election services", "error", err)
		}
		cancel()
	}
	// Watch streams never end on their own: end them so that
	// GracefulStop does not wait for them.
	a.api.Stop()
	stopped := make(chan struct{})
	go func() {
		a.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		a.grpc.Stop()
		<-stopped
	}
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	a.http.Shutdown(hctx)
	cancel()
	if a.gatewayConn != nil {
		a.gatewayConn.Close()
	}
	if a.concurrency != nil {
		a.concurrency.Close()
	}
	for _, l := range a.listeners {
		l.Close()
	}
	a.wg.Wait()
	return a.srv.Close(ctx)
}

func (a *Agent) closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// Run runs the member until ctx ends (SIGINT or SIGTERM in the binary),
// logging to logOut; it removes a dev node's temporary data dir on exit.
func Run(ctx context.Context, cfg Config, logOut io.Writer) error {
	log := cfg.Log.NewLogger(logOut)
	if cfg.TempDataDir() {
		defer os.RemoveAll(cfg.DataDir)
	}
	log.Info("starting concord agent", "name", cfg.Name, "data-dir", cfg.DataDir)
	a, err := Start(ctx, cfg, Options{Logger: log})
	if err != nil {
		return err
	}
	select {
	case <-a.Ready():
		log.Info("ready to serve client requests",
			"client-urls", cfg.Network.AdvertiseClientURLs, "peer-urls", cfg.Network.InitialAdvertisePeerURLs)
	case <-ctx.Done():
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 2*cfg.Raft.ElectionTimeout+5*time.Second)
	defer cancel()
	if err := a.Close(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	log.Info("stopped")
	return nil
}

// withGateway serves etcd's JSON gateway under /v3/ next to handler.
func (a *Agent) withGateway(conn *grpc.ClientConn, handler http.Handler) (http.Handler, error) {
	gwh, err := newGateway(context.Background(), conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/v3/", gwh)
	mux.Handle("/", handler)
	return mux, nil
}

// serverConfig translates the user's configuration into the core's.
func serverConfig(c *Config, peerNet raftnode.Network, log *slog.Logger) (server.Config, error) {
	members, err := c.Cluster.InitialMembers()
	if err != nil {
		return server.Config{}, fmt.Errorf("initial-cluster: %w", err)
	}
	listenPeer, err := url.Parse(c.Network.ListenPeerURLs[0])
	if err != nil {
		return server.Config{}, fmt.Errorf("listen-peer-urls: %w", err)
	}
	s := server.DefaultConfig()
	s.Name = c.Name
	s.DataDir = c.DataDir
	s.ClientURLs = c.Network.AdvertiseClientURLs
	s.PeerURLs = c.Network.InitialAdvertisePeerURLs
	s.ListenPeerAddr = listenPeer.Host
	s.InitialCluster = s.InitialCluster[:0]
	for _, m := range members {
		s.InitialCluster = append(s.InitialCluster, server.InitialMember{Name: m.Name, PeerURLs: m.PeerURLs})
	}
	s.InitialClusterToken = c.Cluster.InitialClusterToken
	s.NewCluster = c.Cluster.InitialClusterState == ClusterStateNew
	s.HeartbeatInterval = c.Raft.HeartbeatInterval
	s.ElectionTimeout = c.Raft.ElectionTimeout
	s.SnapshotCount = c.Raft.SnapshotCount
	s.SnapshotCatchUpEntries = c.Raft.SnapshotCatchUpEntries
	s.MaxLearners = c.Cluster.MaxLearners
	s.StrictReconfigCheck = c.Cluster.StrictReconfigCheck
	period, revisions, err := c.Store.CompactionRetention()
	if err != nil {
		return server.Config{}, fmt.Errorf("auto-compaction-retention: %w", err)
	}
	s.AutoCompactionPeriod, s.AutoCompactionRevisions = period, revisions
	s.MaxRequestBytes = c.Store.MaxRequestBytes
	s.QuotaBackendBytes = c.Store.QuotaBackendBytes
	s.WatchProgressNotifyInterval = c.Store.WatchProgressNotifyInterval
	s.LeaseRevokeRate = c.Store.LeaseRevokeRate
	s.PeerNetwork = peerNet
	s.Logger = log
	return s, nil
}

// devTimings shortens a dev node's raft timings (unless the user set
// them): a lone member waits one election timeout before it elects itself,
// and a dev node should serve well under a second after it starts.
func devTimings(c *Config) {
	if !c.Dev || c.Origin("heartbeat-interval") != "" || c.Origin("election-timeout") != "" {
		return
	}
	c.Raft.HeartbeatInterval = 10 * time.Millisecond
	c.Raft.ElectionTimeout = 100 * time.Millisecond
}

// errNotImplemented marks configuration Concord accepts (it is etcd's) but
// does not honour yet: refusing it beats silently running without it.
var errNotImplemented = errors.New("not implemented yet")

// notHonouredKeys are keys a user may set (they are etcd's) whose effect
// Concord does not provide yet; setting one is refused at start.
var notHonouredKeys = []string{
	"socket-options.reuse-address", "socket-options.reuse-port",
	"quota-backend-bytes", "auth-token-ttl", "bcrypt-cost",
	"tls-min-version", "tls-max-version", "cipher-suites", "self-signed-cert-validity",
}

func checkImplemented(c *Config) error {
	var errs []error
	refuse := func(key string, set bool) {
		if set {
			errs = append(errs, fmt.Errorf("%s: %w", key, errNotImplemented))
		}
	}
	refuse("wal-dir", c.WALDir != "")
	refuse("client-transport-security", c.TLS.Client.Enabled() || c.TLS.Client.ClientCertAuth || c.TLS.Client.TrustedCAFile != "")
	refuse("peer-transport-security", c.TLS.Peer.Enabled() || c.TLS.Peer.ClientCertAuth || c.TLS.Peer.TrustedCAFile != "")
	refuse("listen-metrics-urls", len(c.Metrics.ListenURLs) > 0)
	refuse("listen-peer-urls (more than one)", len(c.Network.ListenPeerURLs) > 1)
	refuse("pre-vote (false)", !c.Raft.PreVote)
	// Authentication is not built yet: the token type is harmless to name
	// (auth is off until enabled), any other than etcd's default is not.
	refuse("auth-token (other than simple)", c.Auth.Token != "" && c.Auth.Token != "simple")
	for _, key := range notHonouredKeys {
		if where := c.Origin(key); where != "" {
			errs = append(errs, fmt.Errorf("%s: %s: %w", where, key, errNotImplemented))
		}
	}
	return errors.Join(errs...)
}
