// Package agenttest runs Concord clusters inside a test process: every
// member is a full agent (core, etcd API on a real loopback port) and the
// peer links go through a faultnet fabric, so that a test can partition
// members, stop and restart them, and check that they converge.
package agenttest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concordkv/concord/agent"
	"github.com/concordkv/concord/core/raftnode"
	"github.com/concordkv/concord/core/raftnode/faultnet"
)

// Options shape a cluster; the zero value is a sensible default.
type Options struct {
	// HeartbeatInterval and ElectionTimeout default to 50 ms and 500 ms:
	// short enough for quick failovers, long enough for a loaded machine.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// Configure, when set, edits each member's configuration before start.
	Configure func(i int, c *agent.Config)
	// Verbose sends member logs to the test log.
	Verbose bool
}

// Cluster is a running in-process cluster.
type Cluster struct {
	t       testing.TB
	opts    Options
	Fabric  *faultnet.Fabric
	Members []*Member
}

// Member is one agent of a Cluster.
type Member struct {
	Name       string
	ClientAddr string       // host:port of the etcd API
	PeerAddr   string       // host:port of the peer port
	Agent      *agent.Agent // nil while stopped
	cfg        agent.Config
	host       *faultnet.Host
	// Listeners opened by Start, handed to the first start of the member so
	// that no other process can take the ports in between; restarts
	// listen on the same ports again.
	clientLn, peerLn net.Listener
}

// Start starts n members bootstrapped together and waits until every one
// serves; the cluster is closed when the test ends.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 50 * time.Millisecond
	}
	if opts.ElectionTimeout == 0 {
		opts.ElectionTimeout = 500 * time.Millisecond
	}
	c := &Cluster{t: t, opts: opts, Fabric: faultnet.New()}
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), host: c.Fabric.Host(fmt.Sprintf("m%d", i))}
		var err error
		if m.clientLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("agenttest: %v", err)
		}
		if m.peerLn, err = m.host.Listen("127.0.0.1:0"); err != nil {
			t.Fatalf("agenttest: %v", err)
		}
		m.ClientAddr, m.PeerAddr = m.clientLn.Addr().String(), m.peerLn.Addr().String()
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"=http://"+m.PeerAddr)
	}
	dir := t.TempDir()
	for i, m := range c.Members {
		m.cfg = c.memberConfig(m, filepath.Join(dir, m.Name), strings.Join(initial, ","), agent.ClusterStateNew)
		if opts.Configure != nil {
			opts.Configure(i, &m.cfg)
		}
	}
	t.Cleanup(c.Close)
	for i := range c.Members {
		c.startAsync(i)
	}
	c.WaitReady()
	return c
}

func (c *Cluster) memberConfig(m *Member, dataDir, initialCluster, state string) agent.Config {
	cfg := agent.DefaultConfig()
	cfg.Name = m.Name
	cfg.DataDir = dataDir
	cfg.Network.ListenClientURLs = []string{"http://" + m.ClientAddr}
	cfg.Network.AdvertiseClientURLs = []string{"http://" + m.ClientAddr}
	cfg.Network.ListenPeerURLs = []string{"http://" + m.PeerAddr}
	cfg.Network.InitialAdvertisePeerURLs = []string{"http://" + m.PeerAddr}
	cfg.Cluster.InitialCluster = initialCluster
	cfg.Cluster.InitialClusterToken = "agenttest"
	cfg.Cluster.InitialClusterState = state
	cfg.Raft.HeartbeatInterval = c.opts.HeartbeatInterval
	cfg.Raft.ElectionTimeout = c.opts.ElectionTimeout
	return cfg
}

// startAsync starts member i; it returns once the member's listeners are
// up (the cluster may not have a leader yet).
func (c *Cluster) startAsync(i int) {
	c.t.Helper()
	m := c.Members[i]
	ln := m.clientLn
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", m.ClientAddr); err != nil {
			c.t.Fatalf("agenttest: listen %s: %v", m.ClientAddr, err)
		}
	}
	var peers raftnode.Network = m.host
	if m.peerLn != nil {
		peers = &preListened{Host: m.host, ln: m.peerLn}
	}
	m.clientLn, m.peerLn = nil, nil
	opts := agent.Options{ClientListeners: []net.Listener{ln}, PeerNetwork: peers}
	if c.opts.Verbose {
		opts.Logger = testLogger(c.t, m.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := agent.Start(ctx, m.cfg, opts)
	if err != nil {
		c.t.Fatalf("agenttest: start %s: %v", m.Name, err)
	}
	m.Agent = a
}

// WaitReady waits until every running member has joined and serves a
// linearizable read.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for _, m := range c.Members {
		if m.Agent == nil {
			continue
		}
		select {
		case <-m.Agent.Ready():
		case <-deadline:
			c.t.Fatalf("agenttest: %s not ready after 30s", m.Name)
		}
	}
}

// Client returns a client of the given members (all running members when
// none are named), closed at the end of the test.
func (c *Cluster) Client(members ...int) *clientv3.Client {
	c.t.Helper()
	if len(members) == 0 {
		for i, m := range c.Members {
			if m.Agent != nil {
				members = append(members, i)
			}
		}
	}
	var eps []string
	for _, i := range members {
		eps = append(eps, c.Members[i].ClientAddr)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatalf("agenttest: client: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that leads, waiting up to ten
// election timeouts for one.
func (c *Cluster) Leader() int {
	c.t.Helper()
	deadline := time.Now().Add(10 * c.opts.ElectionTimeout)
	for time.Now().Before(deadline) {
		for i, m := range c.Members {
			if m.Agent != nil && m.Agent.Server().Node().Status().IsLeader {
				return i
			}
		}
		time.Sleep(c.opts.HeartbeatInterval)
	}
	c.t.Fatalf("agenttest: no leader after %v", 10*c.opts.ElectionTimeout)
	return -1
}

// Follower returns the index of a running member that does not lead.
func (c *Cluster) Follower() int {
	leader := c.Leader()
	for i, m := range c.Members {
		if i != leader && m.Agent != nil {
			return i
		}
	}
	c.t.Fatal("agenttest: no running follower")
	return -1
}

// Stop stops member i cleanly (it hands leadership over if it leads).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	m := c.Members[i]
	if m.Agent == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Agent.Close(ctx); err != nil {
		c.t.Errorf("agenttest: stop %s: %v", m.Name, err)
	}
	m.Agent = nil
}

// Restart starts a stopped member again from its data dir and waits until
// it serves.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.startAsync(i)
	c.WaitReady()
}

// Close stops every member.
func (c *Cluster) Close() {
	for i, m := range c.Members {
		c.Stop(i)
		for _, ln := range []net.Listener{m.clientLn, m.peerLn} {
			if ln != nil {
				ln.Close()
			}
		}
	}
}

// CheckConverged waits until every running member has applied the same
// revision and then compares their HashKV at it; it fails the test if the
// members disagree.
func (c *Cluster) CheckConverged() {
	c.t.Helper()
	cli := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "agenttest-converged")
	if err != nil {
		c.t.Fatalf("agenttest: read revision: %v", err)
	}
	rev := resp.Header.Revision
	var first *clientv3.HashKVResponse
	for i, m := range c.Members {
		if m.Agent == nil {
			continue
		}
		var h *clientv3.HashKVResponse
		for {
			h, err = clientv3.NewMaintenance(cli).HashKV(ctx, "http://"+m.ClientAddr, rev)
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			c.t.Fatalf("agenttest: HashKV of %s at rev %d: %v", m.Name, rev, err)
		}
		if first == nil {
			first = h
			continue
		}
		if h.Hash != first.Hash || h.CompactRevision != first.CompactRevision {
			c.t.Fatalf("agenttest: member %d HashKV at rev %d = %d (compact %d), member 0's = %d (compact %d)",
				i, rev, h.Hash, h.CompactRevision, first.Hash, first.CompactRevision)
		}
	}
}

// preListened is a member's peer network whose first Listen returns the
// listener Start opened.
type preListened struct {
	*faultnet.Host
	ln net.Listener // nil once handed out
}

func (p *preListened) Listen(addr string) (net.Listener, error) {
	if ln := p.ln; ln != nil && addr == ln.Addr().String() {
		p.ln = nil
		return ln, nil
	}
	return p.Host.Listen(addr)
}
