package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Errors a caller may branch on. Err and context.Cause(s.Context()) return
// one of the first three (wrapped with detail) once a session has ended.
var (
	// ErrExpired: the server no longer knows the lease (it expired or was
	// revoked); every key bound to it is gone.
	ErrExpired = errors.New("session: lease expired or revoked")
	// ErrKeepAliveTimeout: no renewal was confirmed within the lease TTL,
	// counted from the moment the last confirmed renewal was sent, so the
	// lease must be presumed expired (it is, unless the server's clock runs
	// slower than ours).
	ErrKeepAliveTimeout = errors.New("session: lease not renewed within its TTL")
	// ErrClosed: Close or Orphan ended the session, or its client was
	// closed.
	ErrClosed = errors.New("session: closed")
	// ErrKeyDeleted: a Hold's key was deleted or replaced by a key with a
	// different create revision.
	ErrKeyDeleted = errors.New("session: key deleted")
	// ErrHoldStopped: Hold.Stop was called.
	ErrHoldStopped = errors.New("session: hold stopped")
)

// DefaultTTL is the lease TTL of a session created without WithTTL.
const DefaultTTL = 60 * time.Second

// Session is a lease kept alive by a goroutine of its own until Close,
// Orphan, or the loss of the lease. Its methods are safe for concurrent use.
type Session struct {
	client *clientv3.Client
	lease  clientv3.LeaseID
	ttl    time.Duration // as granted by the server, whole seconds
	logger *slog.Logger

	// ctx is cancelled, with the reason as its cause, the moment the
	// session is known or presumed lost, or is closed.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// loopDone is closed when the keepalive goroutine has returned.
	loopDone chan struct{}
}

type options struct {
	ttl    time.Duration
	lease  clientv3.LeaseID
	logger *slog.Logger
}

// Option configures New.
type Option func(*options)

// WithTTL sets the TTL of the lease New grants (default DefaultTTL). It is
// rounded up to whole seconds, the lease unit of the etcd API; the server
// may raise it to its minimum (about 1.5 election timeouts). It is ignored
// with WithLease: a resumed lease keeps its own TTL.
func WithTTL(ttl time.Duration) Option { return func(o *options) { o.ttl = ttl } }

// WithLease makes New resume an existing lease instead of granting one: a
// restarted process that saved its lease ID takes back the keys bound to it
// (a lock hold, an election candidacy) as long as the lease has not expired.
func WithLease(id clientv3.LeaseID) Option { return func(o *options) { o.lease = id } }

// WithLogger sets the logger for keepalive trouble (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

func (o *options) validate() error {
	if o.lease == clientv3.NoLease && o.ttl < time.Second {
		return fmt.Errorf("session: TTL %v is below one second", o.ttl)
	}
	if o.logger == nil {
		return errors.New("session: nil logger")
	}
	return nil
}

// New grants a lease (or resumes one, see WithLease) and starts keeping it
// alive. ctx bounds only the grant; the session lives until Close, Orphan
// or the lease is lost. Resuming a lease the server no longer knows fails
// with ErrExpired.
func New(ctx context.Context, cli *clientv3.Client, opts ...Option) (*Session, error) {
	o := options{ttl: DefaultTTL, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	sent := time.Now()
	var id clientv3.LeaseID
	var ttlSeconds int64
	if o.lease != clientv3.NoLease {
		resp, err := cli.KeepAliveOnce(ctx, o.lease)
		if err != nil {
			if isLeaseNotFound(err) {
				return nil, fmt.Errorf("resume lease %x: %w", int64(o.lease), ErrExpired)
			}
			return nil, fmt.Errorf("resume lease %x: %w", int64(o.lease), err)
		}
		id, ttlSeconds = o.lease, resp.TTL
	} else {
		seconds := int64((o.ttl + time.Second - 1) / time.Second)
		resp, err := cli.Grant(ctx, seconds)
		if err != nil {
			return nil, fmt.Errorf("grant lease of %ds: %w", seconds, err)
		}
		id, ttlSeconds = resp.ID, resp.TTL
	}
	ttl := time.Duration(ttlSeconds) * time.Second
	sctx, cancel := context.WithCancelCause(context.Background())
	s := &Session{
		client:   cli,
		lease:    id,
		ttl:      ttl,
		logger:   o.logger.With("lease", fmt.Sprintf("%x", int64(id))),
		ctx:      sctx,
		cancel:   cancel,
		loopDone: make(chan struct{}),
	}
	go s.keepAlive(sent)
	return s, nil
}

// Client returns the client the session was created with.
func (s *Session) Client() *clientv3.Client { return s.client }

// Lease returns the session's lease ID; keys put with it vanish when the
// session ends.
func (s *Session) Lease() clientv3.LeaseID { return s.lease }

// TTL returns the lease TTL the server granted.
func (s *Session) TTL() time.Duration { return s.ttl }

// Done returns a channel closed the moment the session ends: the lease was
// found gone, was not renewed within its TTL, or the session was closed.
func (s *Session) Done() <-chan struct{} { return s.ctx.Done() }

// Err returns nil while the session is alive, and afterwards why it ended:
// an error wrapping ErrExpired, ErrKeepAliveTimeout or ErrClosed.
func (s *Session) Err() error {
	if s.ctx.Err() == nil {
		return nil
	}
	return context.Cause(s.ctx)
}

// Context returns a context that is cancelled when the session ends, with
// Err as its cause: derive from it the contexts of work that is only valid
// while the session's keys exist.
func (s *Session) Context() context.Context { return s.ctx }

// Close stops the keepalives and revokes the lease, deleting every key
// bound to it. A lease that is already gone is not an error. If ctx ends
// before the revoke is confirmed, the lease is left to expire.
func (s *Session) Close(ctx context.Context) error {
	s.end(fmt.Errorf("%w: by Close", ErrClosed))
	<-s.loopDone
	if _, err := s.client.Revoke(ctx, s.lease); err != nil && !isLeaseNotFound(err) {
		return fmt.Errorf("revoke lease %x: %w", int64(s.lease), err)
	}
	return nil
}

// Orphan stops the keepalives without revoking the lease: the lease and
// its keys live until the TTL runs out, so that a restarted process can
// resume them with WithLease, or so that a test can play a crashed client.
func (s *Session) Orphan() {
	s.end(fmt.Errorf("%w: orphaned, lease left to expire", ErrClosed))
	<-s.loopDone
}

// end records why the session ended; the first reason wins.
func (s *Session) end(cause error) {
	if s.ctx.Err() == nil {
		s.logger.Debug("session ended", "cause", cause)
	}
	s.cancel(cause)
}

// keepAlive renews the lease every TTL/3 until the session ends. Every
// renewal is its own request (KeepAliveOnce) so that its send time is
// known: the lease cannot expire on the server before send time + TTL,
// which is the deadline this loop enforces. clientv3's shared KeepAlive
// stream measures from the answer instead (too late by a round trip) and
// checks its deadlines once a second.
func (s *Session) keepAlive(lastSent time.Time) {
	defer close(s.loopDone)
	deadline := lastSent.Add(s.ttl)
	timer := time.NewTimer(s.ttl / 3)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(s.ctx, deadline)
		resp, err := s.client.KeepAliveOnce(rctx, s.lease)
		cancel()
		switch {
		case err == nil:
			deadline = sent.Add(time.Duration(resp.TTL) * time.Second)
			timer.Reset(time.Until(sent.Add(s.ttl / 3)))
		case s.ctx.Err() != nil:
			return
		case isLeaseNotFound(err):
			s.end(fmt.Errorf("renew lease: %w", ErrExpired))
			return
		case !time.Now().Before(deadline):
			s.end(fmt.Errorf("renew lease: %w (last error: %v)", ErrKeepAliveTimeout, err))
			return
		case s.client.Ctx().Err() != nil:
			s.end(fmt.Errorf("%w: client closed", ErrClosed))
			return
		default:
			// KeepAliveOnce retries unavailable members itself; anything
			// else is worth another try until the deadline.
			s.logger.Warn("lease renewal failed", "error", err, "deadline", deadline)
			timer.Reset(min(time.Until(deadline), 100*time.Millisecond))
		}
	}
}

func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) ||
		errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound)
}
