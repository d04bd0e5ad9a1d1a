package etcdapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"

	"github.com/concordkv/concord/core/watch"
)

// WatchBackend is the watch hub behind the Watch service.
type WatchBackend interface {
	// NewWatchStream opens the hub side of one client Watch stream. The
	// caller closes it when the client stream ends.
	NewWatchStream() (*watch.Stream, error)
	// HasLeader reports whether this member currently knows a Raft
	// leader; streams opened with require-leader need one.
	HasLeader() bool
}

// minLeaderCheckInterval bounds how often a require-leader stream polls
// for a leader.
const minLeaderCheckInterval = 10 * time.Millisecond

type watchServer struct {
	pb.UnimplementedWatchServer
	api *API
}

var _ pb.WatchServer = (*watchServer)(nil)

// Watch serves one client Watch stream: a receive loop turns the client's
// requests into calls on a hub Stream, and this goroutine forwards the
// hub's responses (which already answer failed creates, duplicates,
// compaction and progress the way etcd does) with a full header.
//
// The receive loop blocks in stream.Recv, which only returns once the
// client sends, goes away, or this handler has returned (gRPC then cancels
// the stream); so the handler signals it (ctx, Stream.Close) rather than
// waiting for it, as etcd does.
func (ws *watchServer) Watch(stream pb.Watch_WatchServer) error {
	a := ws.api
	requireLeader := requiresLeader(stream.Context())
	if requireLeader && !a.cfg.Watch.HasLeader() {
		return rpctypes.ErrGRPCNoLeader
	}
	select {
	case <-a.stopping:
		return rpctypes.ErrGRPCStopped
	default:
	}
	hs, err := a.cfg.Watch.NewWatchStream()
	if err != nil {
		return a.toGRPCError(err)
	}
	defer hs.Close()

	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	go ws.recvLoop(ctx, cancel, stream, hs)
	return ws.sendLoop(ctx, stream, hs, requireLeader)
}

// requiresLeader reports whether the client opened the stream with
// clientv3.WithRequireLeader (gRPC metadata hasleader=true).
func requiresLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	v := md.Get(rpctypes.MetadataRequireLeaderKey)
	return len(v) > 0 && v[0] == rpctypes.MetadataHasLeader
}

// leaderMonitor tells a stream opened with require-leader when the member
// has known no leader for NoLeaderStreamTimeout: it ticks on C (a third of
// the timeout) and lost says, at a tick, whether the time is up. Without
// the requirement C is nil and never fires.
type leaderMonitor struct {
	C             <-chan time.Time
	ticker        *time.Ticker
	hasLeader     func() bool
	timeout       time.Duration
	noLeaderSince time.Time
}

func (a *API) leaderMonitor(requireLeader bool) *leaderMonitor {
	m := &leaderMonitor{hasLeader: a.cfg.Watch.HasLeader, timeout: a.cfg.NoLeaderStreamTimeout}
	if requireLeader {
		m.ticker = time.NewTicker(max(m.timeout/3, minLeaderCheckInterval))
		m.C = m.ticker.C
	}
	return m
}

// stop releases the ticker.
func (m *leaderMonitor) stop() {
	if m.ticker != nil {
		m.ticker.Stop()
	}
}

// lost is called at each tick of C.
func (m *leaderMonitor) lost(now time.Time) bool {
	switch {
	case m.hasLeader():
		m.noLeaderSince = time.Time{}
	case m.noLeaderSince.IsZero():
		m.noLeaderSince = now
	case now.Sub(m.noLeaderSince) >= m.timeout:
		return true
	}
	return false
}

// recvLoop hands the client's requests to the hub stream until the client
// stops sending or the stream ends; a receive error ends the stream through
// cancel. After the client half-closes, responses keep flowing, as in etcd.
func (ws *watchServer) recvLoop(ctx context.Context, cancel context.CancelCauseFunc, stream pb.Watch_WatchServer, hs *watch.Stream) {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			cancel(err)
			return
		}
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			if u.CreateRequest == nil {
				continue
			}
			_, err = hs.Watch(ctx, u.CreateRequest)
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest == nil {
				continue
			}
			err = hs.Cancel(ctx, u.CancelRequest.WatchId)
		case *pb.WatchRequest_ProgressRequest:
			if u.ProgressRequest == nil {
				continue
			}
			err = hs.RequestProgress(ctx)
		default:
			// etcd ignores a request it does not know rather than
			// ending the stream.
			ws.api.log.Info("ignoring unknown watch request", "type", fmt.Sprintf("%T", req.RequestUnion))
			continue
		}
		switch {
		case err == nil,
			// The hub has queued etcd's reply to the failed create.
			errors.Is(err, watch.ErrWatcherDuplicateID),
			errors.Is(err, watch.ErrEmptyWatcherRange),
			errors.Is(err, watch.ErrNegativeStartRevision),
			// etcd sends nothing for the cancel of an unknown id.
			errors.Is(err, watch.ErrWatcherNotExist):
		default:
			// The stream is closing or ctx ended: the send loop is
			// already on its way out.
			return
		}
	}
}

// sendLoop forwards the hub stream's responses to the client until the
// stream ends, the client goes away, the API stops, or (for a
// require-leader stream) the member has had no leader for
// NoLeaderStreamTimeout.
func (ws *watchServer) sendLoop(ctx context.Context, stream pb.Watch_WatchServer, hs *watch.Stream, requireLeader bool) error {
	a := ws.api
	leader := a.leaderMonitor(requireLeader)
	defer leader.stop()
	for {
		select {
		case r, ok := <-hs.Chan():
			if !ok {
				// The hub closed the stream: the member is stopping.
				return rpctypes.ErrGRPCStopped
			}
			wr := r.ToProto(nil)
			// FillHeader keeps the response's own revision.
			a.cfg.Headers.FillHeader(wr.Header)
			if err := stream.Send(wr); err != nil {
				return err
			}
		case <-ctx.Done():
			err := context.Cause(ctx)
			if errors.Is(err, context.Canceled) {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-a.stopping:
			return rpctypes.ErrGRPCStopped
		case now := <-leader.C:
			if leader.lost(now) {
				return rpctypes.ErrGRPCNoLeader
			}
		}
	}
}
