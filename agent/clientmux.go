package agent

import (
	"bufio"
	"bytes"
	"net"
	"sync"
	"time"
)

// http2Preface opens every HTTP/2 connection made with prior knowledge,
// which is how gRPC clients speak over plain TCP; HTTP/1 clients (curl, the
// JSON gateway, health probes) send a request line instead.
var http2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// sniffTimeout bounds how long a new connection may take to send the bytes
// that tell the protocols apart.
const sniffTimeout = 10 * time.Second

// clientListener splits one client port between the gRPC server and the
// HTTP server by the first bytes of each connection.
type clientListener struct {
	net.Listener
	grpc *subListener
	http *subListener
}

func newClientListener(ln net.Listener) *clientListener {
	return &clientListener{Listener: ln, grpc: newSubListener(ln), http: newSubListener(ln)}
}

// run accepts connections until the listener closes; each one is sniffed
// on its own goroutine so that a slow client delays nobody else.
func (l *clientListener) run() {
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		l.grpc.close()
		l.http.close()
	}()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return
		}
		wg.Go(func() { l.route(c) })
	}
}

func (l *clientListener) route(c net.Conn) {
	br := bufio.NewReaderSize(c, len(http2Preface))
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	head, err := br.Peek(len(http2Preface))
	c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if bytes.Equal(head, http2Preface) {
		l.grpc.deliver(pc)
		return
	}
	if err != nil && len(head) == 0 {
		c.Close()
		return
	}
	l.http.deliver(pc)
}

// peekedConn replays the sniffed bytes before the rest of the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// subListener is a net.Listener fed by clientListener.
type subListener struct {
	parent net.Listener
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
}

func newSubListener(parent net.Listener) *subListener {
	return &subListener{parent: parent, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (s *subListener) deliver(c net.Conn) {
	select {
	case s.conns <- c:
	case <-s.done:
		c.Close()
	}
}

func (s *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *subListener) close() { s.once.Do(func() { close(s.done) }) }

func (s *subListener) Close() error {
	s.close()
	return nil
}

func (s *subListener) Addr() net.Addr { return s.parent.Addr() }
