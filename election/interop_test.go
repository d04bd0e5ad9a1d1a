package election_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordkv/concord/election"
	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/session/sessiontest"
)

// startEtcdctl runs etcdctl with args and returns its stdout lines.
func startEtcdctl(t *testing.T, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(testcluster.Tool(t, "etcdctl", "ETCDCTL"), append([]string{"--endpoints", strings.Join(cluster.Endpoints(), ",")}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines
}

func expectLine(t *testing.T, lines <-chan string, want string, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("etcdctl exited before printing %q", want)
			}
			if line == want {
				return
			}
		case <-deadline:
			t.Fatalf("etcdctl did not print %q within %v", want, limit)
		}
	}
}

// TestEtcdctlElect: `etcdctl elect` candidates and this package's run in
// one election, and `etcdctl elect -l` observes this package's leaders.
func TestEtcdctlElect(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "election/etcdctl")
	const name = "election/etcdctl"
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	obs := &recorder{ch: election.Observe(t.Context(), cli, name)}
	obs.next(t, 5*time.Second) // no leader

	campaigner, lines := startEtcdctl(t, "elect", name, "from-etcdctl")
	expectLine(t, lines, "from-etcdctl", 10*time.Second) // elected
	li := obs.until(t, "from-etcdctl", 5*time.Second)
	if got, err := election.Leader(t.Context(), cli, name); err != nil || got.Key != li.Key {
		t.Fatalf("Leader = %+v, %v; want etcdctl's %s", got, err, li.Key)
	}

	e := election.New(sessiontest.NewSession(t, cli, 10*time.Second), name)
	elected := make(chan *election.Leadership, 1)
	go func() {
		l, err := e.Campaign(t.Context(), "from-sdk")
		if err != nil {
			t.Error(err)
		}
		elected <- l
	}()
	waitCandidates(t, cli, name, 2)
	select {
	case <-elected:
		t.Fatal("elected while etcdctl leads")
	case <-time.After(200 * time.Millisecond):
	}
	if err := campaigner.Process.Signal(syscall.SIGINT); err != nil { // etcdctl resigns
		t.Fatal(err)
	}
	var l *election.Leadership
	select {
	case l = <-elected:
	case <-time.After(5 * time.Second):
		t.Fatal("not elected after etcdctl resigned")
	}
	if l == nil || l.Token() <= li.Token {
		t.Fatalf("elected as %v after etcdctl's token %d", l, li.Token)
	}
	obs.until(t, "from-sdk", 5*time.Second)

	_, listen := startEtcdctl(t, "elect", "-l", name)
	expectLine(t, listen, "from-sdk", 10*time.Second)
	if err := l.Proclaim(t.Context(), "proclaimed"); err != nil {
		t.Fatal(err)
	}
	expectLine(t, listen, "proclaimed", 5*time.Second)
	if err := l.Resign(t.Context()); err != nil {
		t.Fatal(err)
	}
}
