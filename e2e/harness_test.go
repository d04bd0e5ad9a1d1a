package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concordkv/concord/internal/testcluster"
)

// tools are the binaries every test uses. TestMain fills it before any test
// runs; tests only read it.
var tools struct {
	concord string // built by TestMain
	etcdctl string // "" when not found; missing says why
	missing string
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself; building concord would only cost time.
		os.Exit(m.Run())
	}
	os.Exit(buildAndRun(m))
}

// prebuiltEnv names a concord binary to test instead of building one (for
// example a release build, or a build of another checkout).
const prebuiltEnv = "E2E_CONCORD_BINARY"

// buildAndRun builds concord once into a temporary directory, so that every
// test runs the same binary, then runs the tests.
func buildAndRun(m *testing.M) int {
	tools.etcdctl, tools.missing = testcluster.FindTool("etcdctl", "ETCDCTL")
	if p := os.Getenv(prebuiltEnv); p != "" {
		if !isExecutable(p) {
			fmt.Fprintf(os.Stderr, "e2e: %s=%s is not an executable file\n", prebuiltEnv, p)
			return 1
		}
		tools.concord = p
		fmt.Fprintf(os.Stderr, "e2e: testing %s from %s\n", p, prebuiltEnv)
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "concord-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: create build dir: %v\n", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	tools.concord = filepath.Join(dir, "concord")
	start := time.Now()
	build := exec.Command("go", "build", "-o", tools.concord, "github.com/concordkv/concord/cmd/concord")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build concord: %v\n%s", err, out)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: built concord in %v\n", time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// requireEtcdctl skips the test when the real etcdctl cannot be found.
func requireEtcdctl(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts real processes (skipped with -short)")
	}
	if tools.etcdctl == "" {
		t.Skipf("the real etcdctl is needed: %s", tools.missing)
	}
	return tools.etcdctl
}

// raftTiming is the heartbeat and election timeout given to every member.
// Tests use fastRaft: none of them depends on the defaults (100/1000 ms),
// and shorter timings make failovers, and so the suite, faster.
type raftTiming struct {
	heartbeat, election time.Duration
}

var fastRaft = raftTiming{heartbeat: 50 * time.Millisecond, election: 500 * time.Millisecond}

const (
	readyTimeout = 30 * time.Second // a member started or restarted serves within this
	stopTimeout  = 20 * time.Second // a SIGTERMed member exits within this
	killTimeout  = 10 * time.Second // a SIGKILLed member is reaped within this
	startRetries = 3                // attempts when a picked port was taken meanwhile
)

// errPortTaken is returned when a member could not bind a port picked as
// free: another process took it between our check and the member's bind.
var errPortTaken = errors.New("port taken by another process")

// cluster is a set of concord member processes on 127.0.0.1. Its methods
// are called from the test goroutine only; members' processes are watched by
// one goroutine each, which ends when the process exits.
type cluster struct {
	t       *testing.T
	dir     string
	token   string
	timing  raftTiming
	members []*member
	// prepareDataDir, when set, runs for each member of a new cluster
	// before its first start, with the (not yet existing) data dir.
	prepareDataDir func(dir string) error
}

// member is one concord process's identity and flags, kept across restarts.
type member struct {
	name      string
	clientURL string
	peerURL   string
	dataDir   string
	logPath   string
	args      []string // `concord agent` flags, fixed at creation so a restart uses the same ones
	proc      *process // the running process, nil before the first start
}

// process is one run of a member. done is closed once the process has been
// reaped; exitErr is Wait's result and may be read only after done.
type process struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{}
	exitErr error
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// newCluster starts n members that bootstrap a new cluster together and
// waits until each one serves and knows a leader. Every process is killed
// when the test ends, and member logs are dumped if it failed.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterPrepared(t, n, nil)
}

// newClusterPrepared is newCluster with prepareDataDir (see cluster) run
// for each member before it first starts.
func newClusterPrepared(t *testing.T, n int, prepareDataDir func(dir string) error) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: starts real processes (skipped with -short)")
	}
	c := &cluster{t: t, dir: t.TempDir(), token: "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36), timing: fastRaft,
		prepareDataDir: prepareDataDir}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(c.cleanup)
	start := time.Now()
	var err error
	for attempt := range startRetries {
		if err = c.bootstrap(n, attempt); err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) {
			t.Fatalf("start %d-member cluster: %v", n, err)
		}
		t.Logf("attempt %d: %v; picking new ports", attempt+1, err)
		c.killAll()
	}
	if err != nil {
		t.Fatalf("start %d-member cluster: %v", n, err)
	}
	t.Logf("%d members serving in %v (heartbeat %v, election timeout %v)",
		n, time.Since(start).Round(time.Millisecond), c.timing.heartbeat, c.timing.election)
	return c
}

// bootstrap creates n fresh members on new ports, starts them all and waits
// for them to serve.
func (c *cluster) bootstrap(n, attempt int) error {
	ports, err := freePorts(2 * n)
	if err != nil {
		return err
	}
	c.members = make([]*member, n)
	var initial []string
	for i := range n {
		m := c.newMember(fmt.Sprintf("n%d", i), ports[2*i], ports[2*i+1], attempt)
		c.members[i] = m
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range c.members {
		m.args = c.memberArgs(m, strings.Join(initial, ","), "new")
		if c.prepareDataDir != nil {
			if err := c.prepareDataDir(m.dataDir); err != nil {
				return fmt.Errorf("prepare data dir of %s: %w", m.name, err)
			}
		}
		if err := c.start(m); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(c.t.Context(), readyTimeout)
	defer cancel()
	for _, m := range c.members {
		if err := c.waitReady(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) newMember(name string, clientPort, peerPort, attempt int) *member {
	dir := filepath.Join(c.dir, fmt.Sprintf("%s.%d", name, attempt))
	return &member{
		name:      name,
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", clientPort),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		dataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "member.log"),
	}
}

// memberArgs are etcd's flags for m; initialCluster lists every member,
// state is "new" or "existing".
func (c *cluster) memberArgs(m *member, initialCluster, state string) []string {
	return []string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initialCluster,
		"--initial-cluster-token", c.token,
		"--initial-cluster-state", state,
		"--heartbeat-interval", strconv.FormatInt(c.timing.heartbeat.Milliseconds(), 10),
		"--election-timeout", strconv.FormatInt(c.timing.election.Milliseconds(), 10),
	}
}

// addMember creates (without starting) a member that joins the running
// cluster: --initial-cluster-state existing, and an --initial-cluster that
// lists every member including itself. The caller adds it with `member add`
// first.
func (c *cluster) addMember(name string) *member {
	c.t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		c.t.Fatal(err)
	}
	m := c.newMember(name, ports[0], ports[1], 0)
	var initial []string
	for _, o := range c.members {
		initial = append(initial, o.name+"="+o.peerURL)
	}
	initial = append(initial, m.name+"="+m.peerURL)
	m.args = c.memberArgs(m, strings.Join(initial, ","), "existing")
	c.members = append(c.members, m)
	return m
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. All listeners stay open until every port is picked, so the n differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// childEnv is the test's environment without the variables that concord or
// etcdctl would read as configuration.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CONCORD_") || strings.HasPrefix(kv, "ETCDCTL_") || strings.HasPrefix(kv, "ETCD_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start launches m's process with its flags, appending its output to its
// log file. It does not wait for readiness.
func (c *cluster) start(m *member) error {
	if m.proc != nil && m.proc.running() {
		return fmt.Errorf("start %s: already running (pid %d)", m.name, m.proc.cmd.Process.Pid)
	}
	if err := os.MkdirAll(filepath.Dir(m.logPath), 0o755); err != nil {
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: open log: %w", m.name, err)
	}
	_, _ = fmt.Fprintf(logFile, "=== e2e %s: concord agent %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(m.args, " "))
	cmd := exec.Command(tools.concord, append([]string{"agent"}, m.args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = childEnv()
	cmd.SysProcAttr = memberSysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start %s: %w", m.name, err)
	}
	p := &process{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	m.proc = p
	go func() {
		p.exitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return nil
}

// restart starts a stopped or killed member again with the same flags and
// data dir and waits until it serves. If its port was taken meanwhile by
// someone else it tries again a few times (the ports are part of the
// membership and cannot change).
func (c *cluster) restart(m *member) {
	c.t.Helper()
	var err error
	for range startRetries {
		if err = c.start(m); err != nil {
			break
		}
		ctx, cancel := context.WithTimeout(c.t.Context(), readyTimeout)
		err = c.waitReady(ctx, m)
		cancel()
		if !errors.Is(err, errPortTaken) {
			break
		}
		c.t.Logf("restart %s: %v; trying again", m.name, err)
		time.Sleep(200 * time.Millisecond) // back off: the port's holder has to let it go
	}
	if err != nil {
		c.t.Fatalf("restart %s: %v", m.name, err)
	}
}

// restartAll starts every member again at once (a full-cluster restart
// needs a quorum before any of them serves), then waits for each.
func (c *cluster) restartAll() {
	c.t.Helper()
	for _, m := range c.members {
		if err := c.start(m); err != nil {
			c.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(c.t.Context(), readyTimeout)
	defer cancel()
	for _, m := range c.members {
		if err := c.waitReady(ctx, m); err != nil {
			c.t.Fatal(err)
		}
	}
}

// waitReady polls m's Status until it answers and names a leader, failing
// early if the process exits.
func (c *cluster) waitReady(ctx context.Context, m *member) error {
	cli, err := newClient(m)
	if err != nil {
		return err
	}
	defer func() { _ = cli.Close() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, m.clientURL)
		cancel()
		switch {
		case err != nil:
			last = err
		case st.Leader == 0:
			last = errors.New("no leader known")
		default:
			return nil
		}
		select {
		case <-m.proc.done:
			return c.exitedError(m)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %v", m.name, time.Since(m.proc.started).Round(time.Millisecond), last)
		case <-tick.C:
		}
	}
}

// exitedError explains why m's process exited early, naming errPortTaken
// when its log says a port was in use.
func (c *cluster) exitedError(m *member) error {
	tail := tailLines(m.logPath, 5)
	err := fmt.Errorf("%s exited (%v): %s", m.name, m.proc.exitErr, strings.Join(tail, " | "))
	if strings.Contains(strings.Join(tail, "\n"), "address already in use") {
		return fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return err
}

// kill sends SIGKILL to m and waits until it has been reaped.
func (c *cluster) kill(m *member) {
	c.t.Helper()
	c.signal(m, syscall.SIGKILL)
	c.waitExit(m, killTimeout)
}

// killAt sends SIGKILL to every given member back to back, then reaps them:
// the members die at (nearly) the same instant.
func (c *cluster) killAt(ms ...*member) {
	c.t.Helper()
	for _, m := range ms {
		c.signal(m, syscall.SIGKILL)
	}
	for _, m := range ms {
		c.waitExit(m, killTimeout)
	}
}

// stopAll sends SIGTERM to every member, waits for all to exit and fails
// the test unless each exited cleanly (status 0).
func (c *cluster) stopAll() {
	c.t.Helper()
	for _, m := range c.members {
		c.signal(m, syscall.SIGTERM)
	}
	for _, m := range c.members {
		c.waitExit(m, stopTimeout)
		if m.proc.exitErr != nil {
			c.t.Fatalf("%s did not exit cleanly on SIGTERM: %v", m.name, m.proc.exitErr)
		}
	}
}

func (c *cluster) signal(m *member, sig syscall.Signal) {
	c.t.Helper()
	if m.proc == nil || !m.proc.running() {
		c.t.Fatalf("signal %v to %s: not running", sig, m.name)
	}
	if err := m.proc.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v to %s: %v", sig, m.name, err)
	}
}

func (c *cluster) waitExit(m *member, timeout time.Duration) {
	c.t.Helper()
	select {
	case <-m.proc.done:
	case <-time.After(timeout):
		_ = m.proc.cmd.Process.Kill()
		<-m.proc.done
		c.t.Fatalf("%s did not exit within %v", m.name, timeout)
	}
}

// killAll kills every running member and waits for each; used between
// bootstrap attempts and at cleanup.
func (c *cluster) killAll() {
	for _, m := range c.members {
		if m.proc != nil && m.proc.running() {
			_ = m.proc.cmd.Process.Kill()
		}
	}
	for _, m := range c.members {
		if m.proc != nil {
			<-m.proc.done
		}
	}
}

// cleanup kills every process, then dumps the tail of each member's log if
// the test failed.
func (c *cluster) cleanup() {
	c.killAll()
	if !c.t.Failed() {
		return
	}
	for _, m := range c.members {
		lines := tailLines(m.logPath, 40)
		c.t.Logf("---- last %d lines of %s's log (%s):\n%s", len(lines), m.name, m.logPath, strings.Join(lines, "\n"))
	}
}

// tailLines returns the last n lines of the file at path.
func tailLines(path string, n int) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("(read log: %v)", err)}
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// running returns the members whose process is up.
func (c *cluster) running() []*member {
	var out []*member
	for _, m := range c.members {
		if m.proc != nil && m.proc.running() {
			out = append(out, m)
		}
	}
	return out
}

func (c *cluster) others(not *member) []*member {
	var out []*member
	for _, m := range c.members {
		if m != not {
			out = append(out, m)
		}
	}
	return out
}

// newClient is a clientv3 client for the given members' client URLs. It
// does not block: the first request waits for a connection.
func newClient(ms ...*member) (*clientv3.Client, error) {
	eps := make([]string, len(ms))
	for i, m := range ms {
		eps[i] = m.clientURL
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("clientv3 for %v: %w", eps, err)
	}
	return cli, nil
}

// client is newClient for a test: it fails the test on error and closes
// the client when the test ends.
func (c *cluster) client(ms ...*member) *clientv3.Client {
	c.t.Helper()
	if len(ms) == 0 {
		ms = c.members
	}
	cli, err := newClient(ms...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}
