package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestLockElectProcesses runs the concord binary as separate processes,
// as users and scripts do, against a three-member cluster: several
// `concord lock NAME -- COMMAND` at once, and an election whose leader
// process is killed.
func TestLockElectProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs dozens of processes")
	}
	bin := testcluster.ConcordBinary(t)
	c := testcluster.Start(t, 3)
	eps := c.Endpoints()
	cl := c.Client()

	t.Run("lock: mutual exclusion and increasing fencing tokens", func(t *testing.T) {
		const workers, rounds = 3, 10
		dir := t.TempDir()
		counter, tokens := filepath.Join(dir, "counter"), filepath.Join(dir, "tokens")
		if err := os.WriteFile(counter, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Unprotected read-modify-write of a file, and the token appended
		// in holding order: lost updates or disorder mean no exclusion.
		inc := fmt.Sprintf(`v=$(cat %[1]s); echo "$CONCORD_FENCING_TOKEN" >>%[2]s; sleep 0.01; echo $((v+1)) >%[1]s`, counter, tokens)
		var wg sync.WaitGroup
		errs := make(chan error, workers*rounds)
		for w := range workers {
			wg.Go(func() {
				for range rounds {
					// Each worker talks to its own member.
					out, err := exec.Command(bin, "lock", "--endpoints", eps[w%len(eps)], "procs", "--", "sh", "-c", inc).CombinedOutput()
					if err != nil {
						errs <- fmt.Errorf("worker %d: %v: %s", w, err, out)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(counter)
		if got := strings.TrimSpace(string(data)); got != strconv.Itoa(workers*rounds) {
			t.Errorf("counter %s after %d locked increments", got, workers*rounds)
		}
		data, _ = os.ReadFile(tokens)
		lines := strings.Fields(string(data))
		if len(lines) != workers*rounds {
			t.Fatalf("%d tokens for %d holds: %q", len(lines), workers*rounds, lines)
		}
		prev := int64(0)
		for i, l := range lines {
			tok, err := strconv.ParseInt(l, 10, 64)
			if err != nil || tok <= prev {
				t.Fatalf("token %d %q after %d: not strictly increasing in holding order", i, l, prev)
			}
			prev = tok
		}
		if n := mustGet(t, cl, "procs/", clientv3.WithPrefix()).Count; n != 0 {
			t.Errorf("%d keys left under procs/", n)
		}
	})

	t.Run("elect: handover when the leader process is killed", func(t *testing.T) {
		listener := startProc(t, bin, "elect", "--endpoints", eps[2], "-l", "procs-e")
		alpha := startProc(t, bin, "elect", "--endpoints", eps[0], "--ttl", "2", "procs-e", "alpha")
		waitFor(t, 10*time.Second, "alpha to be elected", func() bool { return len(alpha.lines()) == 2 })
		keyA := alpha.lines()[0]
		if !strings.HasPrefix(keyA, "procs-e/") || alpha.lines()[1] != "alpha" {
			t.Fatalf("alpha printed %q", alpha.lines())
		}
		beta := startProc(t, bin, "elect", "--endpoints", eps[1], "--ttl", "2", "procs-e", "beta")
		waitFor(t, 10*time.Second, "beta's candidacy", func() bool {
			return mustGet(t, cl, "procs-e/", clientv3.WithPrefix()).Count == 2
		})
		if out := beta.out.String(); out != "" {
			t.Fatalf("beta printed %q while alpha led", out)
		}

		killed := time.Now()
		alpha.cmd.Process.Kill()
		// alpha's lease expires 2s after its last renewal; its member then
		// revokes it, and beta is elected.
		waitFor(t, 15*time.Second, "beta to be elected after alpha was killed", func() bool { return len(beta.lines()) == 2 })
		t.Logf("beta elected %v after alpha was killed", time.Since(killed).Round(time.Millisecond))
		keyB := beta.lines()[0]
		if beta.lines()[1] != "beta" || keyB == keyA {
			t.Fatalf("beta printed %q", beta.lines())
		}
		want := []string{keyA, "alpha", keyB, "beta"}
		waitFor(t, 5*time.Second, "the listener to print the handover", func() bool { return slices.Equal(listener.lines(), want) })

		// Interrupted, beta resigns (exit 0) and its key goes at once.
		beta.cmd.Process.Signal(os.Interrupt)
		if err := beta.wait(t); err != nil {
			t.Errorf("interrupted elect: %v (%s)", err, beta.out.String())
		}
		if n := mustGet(t, cl, "procs-e/", clientv3.WithPrefix()).Count; n != 0 {
			t.Errorf("%d candidates left after beta resigned", n)
		}
		listener.cmd.Process.Signal(os.Interrupt)
		if err := listener.wait(t); err != nil {
			t.Errorf("interrupted elect -l: %v", err)
		}
		if !slices.Equal(listener.lines(), want) {
			t.Errorf("listener printed %q, want %q", listener.lines(), want)
		}
	})
}

// proc is a concord process whose output the test polls.
type proc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error // set before exited closes
}

// startProc starts bin with args; it is killed at the end of the test if
// still running.
func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	var stderr bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = p.out, &stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start concord %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		p.err = err
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *proc) lines() []string {
	s := strings.TrimSpace(p.out.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// wait waits for the process to exit and returns its error.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(10 * time.Second):
		t.Fatalf("process %v still running after 10s", p.cmd.Args)
		return nil
	}
}
