// Package faultnet is a network for in-process cluster tests whose links
// can be cut and healed.
//
// # Basics
//
// A Fabric connects named hosts over real loopback TCP. Each Host is a
// listen-and-dial endpoint (it satisfies raftnode.Network and any
// interface with the same two methods); give one to each node under test:
//
//	fab := faultnet.New()
//	n1 := fab.Host("n1") // Listen("127.0.0.1:0"), Dial(ctx, addr)
//	n2 := fab.Host("n2")
//	...
//	fab.Isolate("n1")    // n1 can reach nobody and nobody can reach n1
//	fab.HealAll()
//
// A Host's addresses are registered when it listens, so a dial to an
// address is attributed to the host listening there; links are named by
// hosts, not ports.
//
// # Caveats
//
// Links are cut at the connection level, as a firewall rule would: Cut(a,
// b) refuses new connections that a opens to b and closes those a already
// opened to b (the other end sees them close). Connections b opened to a
// keep working in both directions: a one-way cut of a stream protocol means
// "a cannot reach b's services", not "a's packets to b are lost". Use
// CutBoth or Isolate for a real partition. Closing, not stalling, makes
// peers notice a partition at once rather than after a timeout; tests that
// need silent packet loss need something else. Addresses are compared as
// strings: dial the address the listener reported (Listener.Addr().String()).
package faultnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
)

// ErrLinkCut is why Dial fails when the link to the target is cut; Dial
// returns it inside a *net.OpError, as a refused TCP dial would be.
var ErrLinkCut = errors.New("faultnet: link cut")

// Fabric is the network of hosts. The zero value is not usable; use New.
type Fabric struct {
	mu     sync.Mutex        // guards everything below
	hosts  map[string]*Host  // by name
	owners map[string]string // listen address → host name
	cut    map[link]bool     // cut links (directed: from dials to)
	conns  map[link]connSet  // open connections by the link that opened them
}

type link struct{ from, to string }

type connSet map[*conn]struct{}

// New returns an empty fabric.
func New() *Fabric {
	return &Fabric{
		hosts:  make(map[string]*Host),
		owners: make(map[string]string),
		cut:    make(map[link]bool),
		conns:  make(map[link]connSet),
	}
}

// Host returns the host called name, creating it on first use.
func (f *Fabric) Host(name string) *Host {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.hosts[name]; ok {
		return h
	}
	h := &Host{fabric: f, name: name}
	f.hosts[name] = h
	return h
}

// Cut stops from reaching to: new connections from from to to are refused
// and those from already opened to to are closed.
func (f *Fabric) Cut(from, to string) {
	f.mu.Lock()
	f.cut[link{from, to}] = true
	victims := f.takeConnsLocked(link{from, to})
	f.mu.Unlock()
	closeAll(victims)
}

// CutBoth cuts a and b from each other in both directions.
func (f *Fabric) CutBoth(a, b string) {
	f.Cut(a, b)
	f.Cut(b, a)
}

// Isolate cuts name from every other host, both ways (including hosts
// created later, until healed).
func (f *Fabric) Isolate(name string) {
	f.mu.Lock()
	others := make([]string, 0, len(f.hosts))
	for other := range f.hosts {
		if other != name {
			others = append(others, other)
		}
	}
	f.mu.Unlock()
	slices.Sort(others)
	for _, other := range others {
		f.CutBoth(name, other)
	}
}

// Partition splits the named hosts into groups that can reach each other
// only within a group. Hosts not named keep their links.
func (f *Fabric) Partition(groups ...[]string) {
	for i, g := range groups {
		for j, h := range groups {
			if i == j {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					f.Cut(a, b)
				}
			}
		}
	}
}

// Heal lets from reach to again.
func (f *Fabric) Heal(from, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cut, link{from, to})
}

// HealBoth heals both directions between a and b.
func (f *Fabric) HealBoth(a, b string) {
	f.Heal(a, b)
	f.Heal(b, a)
}

// HealAll heals every link.
func (f *Fabric) HealAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cut)
}

// Reachable reports whether from may open connections to to.
func (f *Fabric) Reachable(from, to string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.cut[link{from, to}]
}

// OpenConns reports how many connections from has open to to.
func (f *Fabric) OpenConns(from, to string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns[link{from, to}])
}

func (f *Fabric) takeConnsLocked(l link) connSet {
	set := f.conns[l]
	delete(f.conns, l)
	return set
}

func closeAll(set connSet) {
	for c := range set {
		_ = c.Conn.Close()
	}
}

// Host is one endpoint of a Fabric. It listens and dials over loopback
// TCP, subject to the fabric's cuts.
type Host struct {
	fabric *Fabric
	name   string
}

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Listen opens a TCP listener on addr (e.g. "127.0.0.1:0") owned by h.
func (h *Host) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := h.fabric
	f.mu.Lock()
	f.owners[ln.Addr().String()] = h.name
	f.mu.Unlock()
	return &listener{Listener: ln, fabric: f}, nil
}

// Dial connects h to addr unless the link from h to the host listening at
// addr is cut. Addresses no host listens on are dialled without checks.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	f := h.fabric
	f.mu.Lock()
	to, known := f.owners[addr]
	l := link{h.name, to}
	refused := known && f.cut[l]
	f.mu.Unlock()
	if refused {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %s → %s", ErrLinkCut, h.name, to)}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if !known {
		return c, nil
	}
	wrapped := &conn{Conn: c, fabric: f, link: l}
	f.mu.Lock()
	if f.cut[l] {
		// Cut while dialling.
		f.mu.Unlock()
		_ = c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %s → %s", ErrLinkCut, h.name, to)}
	}
	set := f.conns[l]
	if set == nil {
		set = make(connSet)
		f.conns[l] = set
	}
	set[wrapped] = struct{}{}
	f.mu.Unlock()
	return wrapped, nil
}

// listener unregisters its address on Close.
type listener struct {
	net.Listener
	fabric *Fabric
	once   sync.Once
}

func (l *listener) Close() error {
	l.once.Do(func() {
		f := l.fabric
		f.mu.Lock()
		delete(f.owners, l.Addr().String())
		f.mu.Unlock()
	})
	return l.Listener.Close()
}

// conn is a dialled connection the fabric can close.
type conn struct {
	net.Conn
	fabric *Fabric
	link   link
}

func (c *conn) Close() error {
	f := c.fabric
	f.mu.Lock()
	if set := f.conns[c.link]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(f.conns, c.link)
		}
	}
	f.mu.Unlock()
	return c.Conn.Close()
}
