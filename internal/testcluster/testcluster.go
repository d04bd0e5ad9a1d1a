// Package testcluster starts a cluster of real server processes for tests
// of client-side code (the CLI, the SDK) and hands out its client endpoints.
//
// The servers are Concord members (`concord agent`, built once per test
// binary from this module) unless TESTCLUSTER_SERVER=etcd, which runs the
// real etcd binary (bin/etcd or $ETCD) instead: client-side tests must pass
// against both, since both speak the same API with the same flags.
package testcluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running cluster of Size members on loopback ports.
type Cluster struct {
	t       testing.TB
	members []*member
}

type member struct {
	name      string
	dir       string
	clientURL string
	peerURL   string
	args      []string
	cmd       *exec.Cmd
	exited    chan struct{}
	logPath   string
}

// Start starts a cluster of size members and waits until it serves
// requests; it is stopped when the test ends. Ports are picked free and
// then given to the servers, so another process can take one in between:
// a start whose member could not bind is retried on new ports.
func Start(t testing.TB, size int) *Cluster {
	t.Helper()
	bin := serverCommand(t)
	for attempt := 1; ; attempt++ {
		c := &Cluster{t: t}
		var initial []string
		base := t.TempDir()
		for i := range size {
			m := &member{
				name:      fmt.Sprintf("m%d", i),
				dir:       filepath.Join(base, fmt.Sprintf("m%d", i)),
				clientURL: "http://" + freeAddr(t),
				peerURL:   "http://" + freeAddr(t),
			}
			m.logPath = m.dir + ".log"
			c.members = append(c.members, m)
			initial = append(initial, m.name+"="+m.peerURL)
		}
		for _, m := range c.members {
			m.args = append(append([]string(nil), bin...),
				"--name", m.name, "--data-dir", m.dir,
				"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
				"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-token", "testcluster", "--initial-cluster-state", "new",
			)
			c.startMember(m)
		}
		if attempt < 3 && c.portTaken(5*time.Second) {
			c.stopAll()
			continue
		}
		t.Cleanup(c.stopAll)
		c.WaitReady(30 * time.Second)
		return c
	}
}

// portTaken reports whether a member exited, within wait, because its
// port was taken; it returns false as soon as the first endpoint answers.
func (c *Cluster) portTaken(wait time.Duration) bool {
	first := c.Endpoints()[0]
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, m := range c.members {
			select {
			case <-m.exited:
				data, _ := os.ReadFile(m.logPath)
				return strings.Contains(string(data), "address already in use")
			default:
			}
		}
		if probe(first) == nil {
			return false
		}
	}
	return false
}

// Endpoints returns every member's client endpoint (host:port).
func (c *Cluster) Endpoints() []string {
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = strings.TrimPrefix(m.clientURL, "http://")
	}
	return eps
}

// Client returns a clientv3 client to the given endpoints (all members if
// none are given), closed when the test ends.
func (c *Cluster) Client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		c.t.Fatalf("testcluster: client: %v", err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// Kill stops member i abruptly (SIGKILL).
func (c *Cluster) Kill(i int) {
	m := c.members[i]
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		<-m.exited
	}
}

// Restart starts member i again with the same data.
func (c *Cluster) Restart(i int) {
	c.startMember(c.members[i])
}

// WaitReady waits until every running member answers a linearizable read.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, ep := range c.Endpoints() {
		for {
			if err := probe(ep); err == nil {
				break
			} else if time.Now().After(deadline) {
				c.t.Fatalf("testcluster: %s not ready after %v: %v\n%s", ep, timeout, err, c.logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// probe reads once from ep; its client logs nothing, since refusals are
// expected while a member starts.
func probe(ep string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = cli.Get(ctx, "testcluster-probe")
	return err
}

func (c *Cluster) startMember(m *member) {
	c.t.Helper()
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatalf("testcluster: %v", err)
	}
	cmd := exec.Command(m.args[0], m.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("testcluster: start %s: %v", m.name, err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		logf.Close()
		close(exited)
	}(m.exited)
}

func (c *Cluster) stopAll() {
	for _, m := range c.members {
		if m.cmd != nil && m.cmd.Process != nil {
			select {
			case <-m.exited:
			default:
				m.cmd.Process.Signal(os.Interrupt)
				select {
				case <-m.exited:
				case <-time.After(5 * time.Second):
					m.cmd.Process.Kill()
					<-m.exited
				}
			}
		}
	}
}

func (c *Cluster) logs() string {
	var b strings.Builder
	for _, m := range c.members {
		data, _ := os.ReadFile(m.logPath)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", m.name, strings.Join(lines, "\n"))
	}
	return b.String()
}

// serverCommand returns the command line (before the member flags) that
// starts one member.
func serverCommand(t testing.TB) []string {
	t.Helper()
	if os.Getenv("TESTCLUSTER_SERVER") == "etcd" {
		return []string{Tool(t, "etcd", "ETCD")}
	}
	return []string{ConcordBinary(t), "agent"}
}

// built holds the concord binary built for this test process.
var built struct {
	once sync.Once
	path string
	err  error
}

// ConcordBinary builds cmd/concord once per test process and returns its
// path; the clusters Start runs use the same binary.
func ConcordBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			built.err = err
			return
		}
		// One binary per test process (packages test in parallel); binaries
		// of earlier runs are removed once they are an hour old.
		dir := filepath.Join(os.TempDir(), "concord-testcluster")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			built.err = err
			return
		}
		removeStale(dir, time.Hour)
		built.path = filepath.Join(dir, fmt.Sprintf("concord-%d", os.Getpid()))
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/concord")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build concord: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("testcluster: %v", built.err)
	}
	return built.path
}

func removeStale(dir string, age time.Duration) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
