package etcdapi

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// KV is the replicated key-value store behind the KV service.
type KV interface {
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error)
	DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error)
}

// Cluster is the member table behind the Cluster service.
type Cluster interface {
	MemberList(ctx context.Context, linearizable bool) ([]*pb.Member, error)
	MemberAdd(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error)
	MemberRemove(ctx context.Context, id uint64) ([]*pb.Member, error)
	MemberUpdate(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error)
	MemberPromote(ctx context.Context, id uint64) ([]*pb.Member, error)
}

// Maintenance is the node-level information and operations behind the
// Maintenance service.
type Maintenance interface {
	Status(ctx context.Context) (*pb.StatusResponse, error)
	Hash(ctx context.Context) (uint32, error)
	HashKV(ctx context.Context, rev int64) (*pb.HashKVResponse, error)
	MoveLeader(ctx context.Context, target uint64) error
}

// Headers fills response headers.
type Headers interface {
	// FillHeader sets cluster_id, member_id and raft_term, and the revision
	// if it is still 0, to this node's current values.
	FillHeader(h *pb.ResponseHeader)
}

// Config says what the API serves and with which limits.
type Config struct {
	KV          KV
	Cluster     Cluster
	Maintenance Maintenance
	Headers     Headers
	// Watch is the watch hub behind the Watch service.
	Watch WatchBackend
	// Lease is the lease table behind the Lease service.
	Lease Lease

	// MaxTxnOps is the most operations a txn's compare, success or failure
	// list may hold (etcd's --max-txn-ops).
	MaxTxnOps int
	// MaxRequestBytes is the largest request accepted (etcd's
	// --max-request-bytes).
	MaxRequestBytes int
	// KeepaliveMinTime is the shortest interval between client pings the
	// server tolerates (etcd's --grpc-keepalive-min-time, 5 s).
	KeepaliveMinTime time.Duration
	// KeepaliveInterval and KeepaliveTimeout drive server-to-client pings
	// (etcd's --grpc-keepalive-interval 2 h and --grpc-keepalive-timeout 20 s).
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration
	// MaxConcurrentStreams bounds the streams per client connection.
	MaxConcurrentStreams uint32
	// NoLeaderStreamTimeout is how long a Watch or LeaseKeepAlive stream
	// opened with require-leader (clientv3.WithRequireLeader) survives
	// while this member knows no leader before it ends with "etcdserver: no
	// leader" (etcd waits three election timeouts). Default 3 s.
	NoLeaderStreamTimeout time.Duration

	Logger *slog.Logger
}

// DefaultConfig returns etcd's default limits; the backends must be set.
func DefaultConfig() Config {
	return Config{
		MaxTxnOps:            128,
		MaxRequestBytes:      1536 * 1024,
		KeepaliveMinTime:     5 * time.Second,
		KeepaliveInterval:    2 * time.Hour,
		KeepaliveTimeout:     20 * time.Second,
		MaxConcurrentStreams: math.MaxUint32,

		NoLeaderStreamTimeout: 3 * time.Second,
	}
}

// Validate reports a missing backend or a nonsensical limit.
func (c Config) Validate() error {
	switch {
	case c.KV == nil || c.Cluster == nil || c.Maintenance == nil || c.Headers == nil:
		return errors.New("etcdapi: KV, Cluster, Maintenance and Headers must be set")
	case c.MaxTxnOps <= 0:
		return errors.New("etcdapi: MaxTxnOps must be positive")
	case c.MaxRequestBytes <= 0:
		return errors.New("etcdapi: MaxRequestBytes must be positive")
	case c.Watch == nil:
		return errors.New("etcdapi: Watch must be set")
	case c.Lease == nil:
		return errors.New("etcdapi: Lease must be set")
	case c.NoLeaderStreamTimeout <= 0:
		return errors.New("etcdapi: NoLeaderStreamTimeout must be positive")
	}
	return nil
}

// grpcOverheadBytes is the room gRPC framing gets on top of the largest
// request, as in etcd: the request-size check itself answers with etcd's
// "request is too large", so gRPC's own limit must not trigger first.
const grpcOverheadBytes = 512 * 1024

// API holds the etcd services; register them on a gRPC server with Register.
type API struct {
	cfg Config
	log *slog.Logger
	// stopping is closed by Stop: long-lived streams end.
	stopping chan struct{}
	stopOnce sync.Once
}

// New validates cfg and returns the API.
func New(cfg Config) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg, log: log, stopping: make(chan struct{})}, nil
}

// Stop ends every long-lived stream (Watch) with etcd's "server stopped",
// which clients answer by moving to another member, and refuses new ones.
// Call it before the gRPC server's GracefulStop, which would otherwise wait
// for those streams forever. It does not wait.
func (a *API) Stop() { a.stopOnce.Do(func() { close(a.stopping) }) }

// ServerOptions returns the gRPC server options etcd clients depend on:
// message size limits above MaxRequestBytes, and keepalive enforcement that
// allows pings as often as etcd does.
func (a *API) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(a.cfg.MaxRequestBytes + grpcOverheadBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(a.cfg.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             a.cfg.KeepaliveMinTime,
			PermitWithoutStream: false,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    a.cfg.KeepaliveInterval,
			Timeout: a.cfg.KeepaliveTimeout,
		}),
	}
}

// Register registers the etcd services on s.
func (a *API) Register(s *grpc.Server) {
	pb.RegisterKVServer(s, &kvServer{api: a})
	pb.RegisterClusterServer(s, &clusterServer{api: a})
	pb.RegisterMaintenanceServer(s, &maintenanceServer{api: a})
	pb.RegisterWatchServer(s, &watchServer{api: a})
	pb.RegisterLeaseServer(s, &leaseServer{api: a})
}

// header returns a filled header for responses that carry no revision of
// their own.
func (a *API) header() *pb.ResponseHeader {
	h := &pb.ResponseHeader{}
	a.cfg.Headers.FillHeader(h)
	return h
}

// fill completes a header the core returned, creating it if absent.
func (a *API) fill(h **pb.ResponseHeader) {
	if *h == nil {
		*h = &pb.ResponseHeader{}
	}
	a.cfg.Headers.FillHeader(*h)
}
