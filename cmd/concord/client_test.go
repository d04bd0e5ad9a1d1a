package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/internal/testcluster"
)

// result is what a user sees of one command line: its output, the error
// line main prints, and the exit code.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

// cli runs concord command lines in-process against a cluster.
type cli struct {
	t         *testing.T
	endpoints []string
}

func newCLI(t *testing.T, c *testcluster.Cluster) cli {
	return cli{t: t, endpoints: c.Endpoints()}
}

// run runs `concord ARGS --endpoints ...` through main's run.
func (c cli) run(args ...string) result {
	c.t.Helper()
	return execute(c.t.Context(), "", c.withEndpoints(args)...)
}

// runIn is run with stdin.
func (c cli) runIn(stdin string, args ...string) result {
	c.t.Helper()
	return execute(c.t.Context(), stdin, c.withEndpoints(args)...)
}

// ok runs args, fails the test unless they succeed, and returns stdout.
func (c cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.err != nil {
		c.t.Fatalf("concord %s: exit %d: %v\nstderr: %s", strings.Join(args, " "), r.code, r.err, r.stderr)
	}
	return r.stdout
}

// withEndpoints puts --endpoints right after the command group, so that it
// is a flag even when args hold "--".
func (c cli) withEndpoints(args []string) []string {
	flag := "--endpoints=" + strings.Join(c.endpoints, ",")
	if len(args) == 0 {
		return []string{flag}
	}
	return append([]string{args[0], flag}, args[1:]...)
}

// execute runs one command line as main does: through run when there is
// no stdin, and with stdin set on the same root command otherwise (run
// leaves stdin to the process). A failure adds main's "Error: ..." line.
func execute(ctx context.Context, stdin string, args ...string) result {
	var stdout, stderr bytes.Buffer
	var err error
	if stdin == "" {
		err = run(ctx, args, &stdout, &stderr)
	} else {
		root := newRootCommand(&stdout, &stderr)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(args)
		err = root.ExecuteContext(ctx)
	}
	r := result{stdout: stdout.String(), err: err}
	if err != nil {
		r.code = exitCode(err)
		stderr.WriteString("Error: " + err.Error() + "\n")
	}
	r.stderr = stderr.String()
	return r
}

// syncBuffer is an io.Writer that a running command writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// background runs a long-running command line (watch, keep-alive) until
// stop is called; stop returns its result.
func (c cli) background(args ...string) (out *syncBuffer, stop func() result) {
	c.t.Helper()
	ctx, cancel := context.WithCancel(c.t.Context())
	out = &syncBuffer{}
	errOut := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, c.withEndpoints(args), out, errOut) }()
	var once sync.Once
	var r result
	stop = func() result {
		once.Do(func() {
			cancel()
			err := <-done
			r = result{stdout: out.String(), stderr: errOut.String(), err: err}
			if err != nil {
				r.code = exitCode(err)
				r.stderr += "Error: " + err.Error() + "\n"
			}
		})
		return r
	}
	c.t.Cleanup(func() { stop() })
	return out, stop
}

// deadEndpoint returns a loopback address nothing listens on.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func mustPut(t *testing.T, c *clientv3.Client, key, val string, opts ...clientv3.OpOption) *clientv3.PutResponse {
	t.Helper()
	resp, err := c.Put(t.Context(), key, val, opts...)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp
}

func mustGet(t *testing.T, c *clientv3.Client, key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	resp, err := c.Get(t.Context(), key, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return resp
}

func wantOutput(t *testing.T, what string, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n got: %q\nwant: %q", what, got, want)
	}
}

// TestEnvironment checks CONCORD_* variables: they set global flags the
// command line leaves unset, a flag wins over them, and a bad value is an
// argument error.
func TestEnvironment(t *testing.T) {
	c := testcluster.Start(t, 1)
	cl := c.Client()
	mustPut(t, cl, "env-key", "env-value")
	ctx := t.Context()

	t.Setenv("CONCORD_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	t.Setenv("CONCORD_WRITE_OUT", "json")
	r := execute(ctx, "", "kv", "get", "env-key")
	if r.err != nil {
		t.Fatalf("get with CONCORD_ENDPOINTS: %v", r.err)
	}
	if !strings.HasPrefix(r.stdout, `{"header":`) || !strings.Contains(r.stdout, `"value":"ZW52LXZhbHVl"`) {
		t.Errorf("CONCORD_WRITE_OUT=json ignored: %q", r.stdout)
	}

	// The command line wins over the environment.
	t.Setenv("CONCORD_ENDPOINTS", deadEndpoint(t))
	r = execute(ctx, "", "kv", "get", "env-key", "-w", "simple", "--endpoints", strings.Join(c.Endpoints(), ","))
	if r.err != nil {
		t.Fatalf("get with --endpoints over a dead CONCORD_ENDPOINTS: %v", r.err)
	}
	wantOutput(t, "flag over env", r.stdout, "env-key\nenv-value\n")

	t.Setenv("CONCORD_DIAL_TIMEOUT", "soon")
	r = execute(ctx, "", "kv", "get", "env-key")
	if r.code != exitBadArgs || !strings.Contains(r.stderr, `invalid value "soon" for CONCORD_DIAL_TIMEOUT`) {
		t.Errorf("bad CONCORD_DIAL_TIMEOUT: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestUnreachableEndpoint: a cluster that does not answer is one error
// line and exit 1 once --command-timeout passes, as with etcdctl.
func TestUnreachableEndpoint(t *testing.T) {
	start := time.Now()
	r := execute(t.Context(), "", "kv", "get", "k", "--endpoints", deadEndpoint(t), "--command-timeout", "300ms")
	if r.code != exitGeneral {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, exitGeneral, r.stderr)
	}
	wantOutput(t, "stderr", r.stderr, "Error: context deadline exceeded\n")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v with --command-timeout 300ms", took)
	}
}

// TestAuth: --user and --password (and their CONCORD_* variables) carry
// credentials; without them an auth-enabled cluster refuses the request
// with one error line.
func TestAuth(t *testing.T) {
	c := testcluster.Start(t, 1)
	cl := c.Client()
	ctx := t.Context()
	if _, err := cl.RoleAdd(ctx, "root"); status.Code(err) == codes.Unimplemented {
		t.Skip("the server does not implement auth yet")
	} else if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := cl.UserAdd(ctx, "root", "secret"); return err },
		func() error { _, err := cl.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cl.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	x := newCLI(t, c)

	wantOutput(t, "put --user name:password", x.ok("kv", "put", "a", "1", "--user", "root:secret"), "OK\n")
	wantOutput(t, "get --user --password", x.ok("kv", "get", "a", "--user", "root", "--password", "secret"), "a\n1\n")

	r := x.run("kv", "get", "a")
	if r.code != exitGeneral || r.stdout != "" {
		t.Errorf("get without credentials: exit %d, stdout %q", r.code, r.stdout)
	}
	wantOutput(t, "without credentials", r.stderr, "Error: etcdserver: user name is empty\n")

	r = x.run("kv", "get", "a", "--user", "root:wrong")
	if r.code != exitBadConnection {
		t.Errorf("get with a wrong password: exit %d", r.code)
	}
	wantOutput(t, "wrong password", r.stderr, "Error: etcdserver: authentication failed, invalid user ID or password\n")

	t.Setenv("CONCORD_USER", "root")
	t.Setenv("CONCORD_PASSWORD", "secret")
	wantOutput(t, "get with CONCORD_USER and CONCORD_PASSWORD", x.ok("kv", "get", "a"), "a\n1\n")
}
