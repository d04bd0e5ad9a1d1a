package concurrencyapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
)

// The errors of etcd's recipes, with etcd's messages: clients see the
// same text from Concord's services as from etcd's. etcd returns them as
// plain errors, which gRPC sends with code Unknown.
var (
	errSessionExpired   = status.Error(codes.Unknown, "mutex: session is expired")
	errNotLeader        = status.Error(codes.Unknown, "election: not leader")
	errNoLeader         = status.Error(codes.Unknown, "election: no leader")
	errMissingLeaderKey = status.Error(codes.Unknown, `"leader" field must be provided`)
)

// acquire is the part Lock and Campaign share: it runs win (which waits
// for a lock's hold or a leadership) on a session of the caller's lease,
// and leaves the lease to the caller afterwards. What win won is given up
// again (best effort, within releaseTimeout) if the caller left meanwhile:
// a caller told "no" must not be left holding; etcd leaves it held until
// the lease ends. Errors are the gRPC errors to answer, named after what.
func (s *Service) acquire(ctx context.Context, what string, lease int64, win func(context.Context, *session.Session) (giveUp func(context.Context) error, err error)) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	sess, err := s.session(ctx, lease)
	if err != nil {
		return s.grpcError(ctx, what, err)
	}
	// The lease is the caller's: left to the caller when the call returns,
	// whatever the outcome (Close would revoke it).
	defer sess.Orphan()
	giveUp, err := win(ctx, sess)
	if err != nil {
		return s.grpcError(ctx, what, err)
	}
	if ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if gerr := giveUp(rctx); gerr != nil {
			s.log.Warn("could not give up what a call won after its caller left; it goes with the lease",
				"call", what, "err", gerr)
		}
		return s.grpcError(ctx, what, context.Cause(ctx))
	}
	return nil
}

// releaseTimeout bounds acquire's giving up.
const releaseTimeout = 5 * time.Second

// errStopping is the cause given to the calls Stop ends.
var errStopping = errors.New("concurrencyapi: service stopping")

// Config configures a Service; set every field before New.
type Config struct {
	// Endpoint is the host:port of the member's own client port, which the
	// services are clients of. Required.
	Endpoint string
	// DialTimeout bounds the first connection to Endpoint; 0 does not wait
	// for it (requests wait instead).
	DialTimeout time.Duration
	// Logger receives the services' logs; the default discards them.
	Logger *slog.Logger
}

// DefaultConfig returns a configuration with every default set; Endpoint
// is left for the caller.
func DefaultConfig() Config {
	return Config{Logger: slog.New(slog.DiscardHandler)}
}

// Validate reports a configuration New cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("concurrencyapi: no endpoint (the member's own client address)"))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("concurrencyapi: negative dial timeout %v", c.DialTimeout))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("concurrencyapi: nil logger"))
	}
	return errors.Join(errs...)
}

// Service serves the Lock and Election services of one member.
type Service struct {
	cfg Config
	log *slog.Logger
	cli *clientv3.Client

	// stopCtx is cancelled, with errStopping, by Stop: every call derives
	// its context from it too.
	stopCtx context.Context
	stop    context.CancelCauseFunc

	mu      sync.Mutex     // guards stopped and the Add side of calls
	stopped bool           // no call may begin
	calls   sync.WaitGroup // one per call in flight
}

// New returns a Service whose client connects to cfg.Endpoint; nothing
// is served until Register.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{cfg.Endpoint},
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("concurrencyapi: client of own port %s: %w", cfg.Endpoint, err)
	}
	stopCtx, stop := context.WithCancelCause(context.Background())
	return &Service{cfg: cfg, log: cfg.Logger, cli: cli, stopCtx: stopCtx, stop: stop}, nil
}

// Register registers the Lock and Election services on g.
func (s *Service) Register(g *grpc.Server) {
	v3lockpb.RegisterLockServer(g, &lockServer{s: s})
	v3electionpb.RegisterElectionServer(g, &electionServer{s: s})
}

// Stop ends every call in flight (waiting Lock and Campaign calls,
// Observe streams) with "etcdserver: server stopped" and refuses new ones,
// then waits until they have returned, or until ctx ends. Call it before
// stopping the gRPC server gracefully: a waiting call would hold it up.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.stop(errStopping)
	done := make(chan struct{})
	go func() {
		s.calls.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("concurrencyapi: calls still in flight after stop: %w", context.Cause(ctx))
	}
}

// Close closes the internal client; call it after Stop.
func (s *Service) Close() error {
	s.stop(errStopping)
	return s.cli.Close()
}

// begin admits a call: it returns the call's context, ended by the
// caller's or by Stop, and the function to call when the call returns.
func (s *Service) begin(ctx context.Context) (context.Context, func(), error) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil, nil, rpctypes.ErrGRPCStopped
	}
	s.calls.Add(1)
	s.mu.Unlock()
	cctx, cancel := context.WithCancelCause(ctx)
	stopAfter := context.AfterFunc(s.stopCtx, func() { cancel(errStopping) })
	return cctx, func() {
		stopAfter()
		cancel(nil)
		s.calls.Done()
	}, nil
}

// session starts a session on the caller's lease (a new lease of
// session.DefaultTTL for lease 0, as etcd does). The caller orphans it
// when the call returns: the lease is the caller's to keep alive or to
// revoke, never the service's.
func (s *Service) session(ctx context.Context, lease int64) (*session.Session, error) {
	opts := []session.Option{session.WithLogger(s.log)}
	if lease != 0 {
		opts = append(opts, session.WithLease(clientv3.LeaseID(lease)))
	}
	return session.New(ctx, s.cli, opts...)
}

// grpcError turns an error met while serving a call into what etcd would
// answer: the server error as the server gave it, a context's end as
// Canceled or DeadlineExceeded, the recipes' errors with etcd's messages.
func (s *Service) grpcError(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(context.Cause(ctx), errStopping) {
		return rpctypes.ErrGRPCStopped
	}
	switch {
	case errors.Is(err, lock.ErrLost):
		return errSessionExpired
	case errors.Is(err, election.ErrNotLeader):
		return errNotLeader
	case errors.Is(err, election.ErrNoLeader):
		return errNoLeader
	case errors.Is(err, lock.ErrEmptyName), errors.Is(err, election.ErrEmptyName):
		// etcd takes "" for a name and queues under "/"; the SDK refuses a
		// name that would share keys with every other lock.
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, session.ErrExpired):
		// The caller's lease is unknown; etcd's answer comes from the put
		// that binds the key to it.
		return rpctypes.ErrGRPCLeaseNotFound
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return status.Error(ee.Code(), ee.Error())
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	s.log.Warn("concurrency call failed", "call", what, "error", err)
	return status.Error(codes.Unknown, err.Error())
}
