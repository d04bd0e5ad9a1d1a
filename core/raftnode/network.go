package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Network is how the peer port listens and dials. TCPNetwork is the
// default; faultnet provides one whose links tests can cut; a TLS network
// wraps both calls.
type Network interface {
	// Listen opens the peer port on addr (host:port, port 0 picks one).
	Listen(addr string) (net.Listener, error)
	// Dial connects to a peer's address.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// TCPNetwork is plain TCP. The zero value is ready to use.
type TCPNetwork struct{}

// Listen implements Network.
func (TCPNetwork) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// Dial implements Network.
func (TCPNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// The first byte a dialer writes on a peer connection chooses who serves it.
const (
	muxRaft byte = 0x01 // hashicorp/raft's NetworkTransport
	muxGRPC byte = 0x02 // the internal gRPC services
)

// handshakeTimeout bounds how long an accepted connection may take to send
// its first byte.
const handshakeTimeout = 10 * time.Second

// peerKeepalive is how often a peer connection with RPCs in flight is
// pinged, and how long a ping may go unanswered.
const peerKeepalive = 5 * time.Second

// peerServerOptions are the peer port's gRPC server options; the keepalive
// policy admits the pings DialPeer's clients send.
func peerServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxPeerMessage),
		grpc.MaxSendMsgSize(maxPeerMessage),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: peerKeepalive / 2}),
	}
}

// maxPeerMessage bounds one gRPC message on the peer port: a forwarded
// batch of proposals or their results. Peers are trusted members.
const maxPeerMessage = 512 << 20

// peerMux serves one listener for raft's stream layer and gRPC, choosing by
// the first byte of each connection.
type peerMux struct {
	ln     net.Listener
	raft   *subListener
	grpc   *subListener
	logger *slog.Logger

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool

	wg sync.WaitGroup // the accept loop and handshakes
}

func newPeerMux(ln net.Listener, advertise net.Addr, logger *slog.Logger) *peerMux {
	return &peerMux{
		ln:     ln,
		raft:   newSubListener(advertise),
		grpc:   newSubListener(advertise),
		logger: logger,
		conns:  make(map[net.Conn]struct{}),
	}
}

// start runs the accept loop until close.
func (m *peerMux) start() { m.wg.Go(m.acceptLoop) }

func (m *peerMux) acceptLoop() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || m.isClosed() {
				return
			}
			m.logger.Warn("peer port accept", "error", err)
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		if !m.track(c) {
			_ = c.Close()
			return
		}
		m.wg.Go(func() { m.route(c) })
	}
}

// route reads the first byte and hands the connection to its server.
func (m *peerMux) route(c net.Conn) {
	var b [1]byte
	_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if _, err := c.Read(b[:]); err != nil {
		m.logger.Debug("peer connection closed before choosing a protocol", "remote", c.RemoteAddr(), "error", err)
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var sub *subListener
	switch b[0] {
	case muxRaft:
		sub = m.raft
	case muxGRPC:
		sub = m.grpc
	default:
		m.logger.Warn("peer connection with unknown protocol byte", "remote", c.RemoteAddr(), "byte", b[0])
		_ = c.Close()
		return
	}
	if !sub.deliver(c) {
		_ = c.Close()
	}
}

// track records c so that close can cut it; false once closed.
func (m *peerMux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *peerMux) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// close stops accepting, closes every connection it accepted (raft's
// transport leaves inbound connections open on Close) and waits for its
// goroutines.
func (m *peerMux) close() error {
	m.mu.Lock()
	m.closed = true
	conns := m.conns
	m.conns = nil
	m.mu.Unlock()
	err := m.ln.Close()
	_ = m.raft.Close()
	_ = m.grpc.Close()
	for c := range conns {
		_ = c.Close()
	}
	m.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close peer listener: %w", err)
	}
	return nil
}

// subListener is a net.Listener fed by peerMux.
type subListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newSubListener(addr net.Addr) *subListener {
	return &subListener{addr: addr, conns: make(chan net.Conn, 16), done: make(chan struct{})}
}

// deliver queues c for Accept; false if the listener is closed.
func (l *subListener) deliver(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// Accept implements net.Listener.
func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *subListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener: the advertised address, which raft's
// NetworkTransport reports as this server's address.
func (l *subListener) Addr() net.Addr { return l.addr }

// raftStream is raft's StreamLayer on the peer port.
type raftStream struct {
	*subListener
	network Network
}

var _ raft.StreamLayer = raftStream{}

// Dial implements raft.StreamLayer.
func (s raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialMux(ctx, s.network, string(addr), muxRaft)
}

// dialMux connects to a peer port and selects proto.
func dialMux(ctx context.Context, network Network, addr string, proto byte) (net.Conn, error) {
	c, err := network.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("dial peer %s: %w", addr, err)
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(d)
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("select protocol on peer %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// addrString is a net.Addr for an advertised host:port.
type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// DialPeer returns a gRPC client connection to the internal services on a
// peer port at addr, usable before any Node exists (a joining member asking
// an existing one for the member list). The connection is lazy: ctx bounds
// nothing yet and is kept for API symmetry with blocking dials (TLS). The
// caller closes the connection.
func DialPeer(ctx context.Context, network Network, addr string) (*grpc.ClientConn, error) {
	if network == nil {
		network = TCPNetwork{}
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dialMux(ctx, network, addr, muxGRPC)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Peers come back quickly after a partition or restart; gRPC's
		// default backoff (up to 2 minutes) would keep a healed link idle.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxPeerMessage), grpc.MaxCallSendMsgSize(maxPeerMessage)),
		// A peer that vanishes without closing the connection (power loss,
		// a silent network) fails the RPCs waiting on it within ~10 s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: peerKeepalive, Timeout: peerKeepalive}),
	)
	if err != nil {
		return nil, fmt.Errorf("grpc client for peer %s: %w", addr, err)
	}
	return cc, nil
}
