package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/internal/testcluster"
)

// etcdctlCommand returns the etcdctl command line matching a concord one:
// the kv group is etcdctl's top level.
func etcdctlArgs(args []string) []string {
	if len(args) > 0 && args[0] == "kv" {
		return args[1:]
	}
	return args
}

// etcdctlEnv is the environment for etcdctl without any ETCDCTL_*
// settings of the caller's.
func etcdctlEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

// runEtcdctl runs the real etcdctl to completion. Its stderr keeps only
// what a user reads: clientv3's JSON log lines are dropped.
func runEtcdctl(ctx context.Context, t *testing.T, bin, endpoints, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints=" + endpoints}, args...)...)
	cmd.Env = etcdctlEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), err: err}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("etcdctl %v: %v", args, err)
	}
	for _, l := range strings.SplitAfter(stderr.String(), "\n") {
		if l != "" && !strings.HasPrefix(l, `{"level":`) {
			r.stderr += l
		}
	}
	return r
}

// Normalisers for values that legitimately differ between two runs of a
// write: revisions advance, lease IDs are new, TTLs tick, durations vary.
var (
	revisionRE = regexp.MustCompile(`("(?:[a-z_]*revision|[A-Za-z]*Revision)" ?: ?)\d+`)
	leaseHexRE = regexp.MustCompile(`\blease [0-9a-f]{16}\b`)
	leaseNumRE = regexp.MustCompile(`("(?:ID|id)" ?: ?)\d+`)
	ttlRE      = regexp.MustCompile(`remaining\(\d+s\)|("(?:ttl|TTL)" ?: ?)\d+`)
	tookRE     = regexp.MustCompile(`took = \S+|("took":)"[^"]*"|("Took" : )\S+`)
)

func normRevisions(s string) string { return revisionRE.ReplaceAllString(s, "${1}<rev>") }
func normLeases(s string) string {
	return leaseNumRE.ReplaceAllString(leaseHexRE.ReplaceAllString(s, "lease <id>"), "${1}<id>")
}
func normTTL(s string) string  { return ttlRE.ReplaceAllString(s, "${1}<ttl>") }
func normTook(s string) string { return tookRE.ReplaceAllString(s, "${1}${2}<took>") }

// TestGoldenAgainstEtcdctl runs the same command lines through the real
// etcdctl and through concord against one cluster and requires the same
// stdout, error line and exit code, once the values that legitimately
// differ between two runs are masked. Writes are replayed from the same
// starting state (the setup) for each tool.
func TestGoldenAgainstEtcdctl(t *testing.T) {
	bin := testcluster.Tool(t, "etcdctl", "ETCDCTL")
	c := testcluster.Start(t, 1)
	cl := c.Client()
	eps := strings.Join(c.Endpoints(), ",")
	ctx := t.Context()

	reset := func(prefix string, kvs ...string) func() {
		return func() {
			if _, err := cl.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(kvs); i += 2 {
				mustPut(t, cl, kvs[i], kvs[i+1])
			}
		}
	}
	// State the read-only cases share: three keys, one of them rewritten,
	// one under a lease.
	reset("gold/", "gold/a", "apple", "gold/b", "banana", "gold/c", "cherry")()
	firstRev := mustGet(t, cl, "gold/a").Kvs[0].ModRevision
	mustPut(t, cl, "gold/a", "apricot")
	lease, err := cl.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	leaseHex := fmt.Sprintf("%x", int64(lease.ID))
	mustPut(t, cl, "gold/leased", "l", clientv3.WithLease(lease.ID))

	txnIn := "value(\"gold/t/k\") = \"v1\"\n\nput gold/t/k v2\nget gold/t/k\ndel gold/t/none\n\nput gold/t/else x\n\n"
	txnReset := reset("gold/t/", "gold/t/k", "v1")

	for _, tc := range []struct {
		args  []string
		stdin string
		setup func()
		norm  []func(string) string
	}{
		// Reads of the shared state: identical byte for byte.
		{args: []string{"kv", "get", "gold/a"}},
		{args: []string{"kv", "get", "gold/", "--prefix"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "-w", "json"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "-w", "fields"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "--limit", "2", "-w", "json"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "--keys-only"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "--print-value-only"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "--count-only", "-w", "fields"}},
		{args: []string{"kv", "get", "gold/", "--prefix", "--order", "DESCEND", "--sort-by", "VALUE"}},
		{args: []string{"kv", "get", "gold/a", "--rev", fmt.Sprint(firstRev), "-w", "json"}},
		{args: []string{"kv", "get", "gold/b", "--from-key", "--limit", "2"}},
		{args: []string{"kv", "get", "gold/a", "gold/c", "-w", "fields"}},
		{args: []string{"kv", "get", "gold/b", "--hex"}},
		{args: []string{"kv", "get", "gold/leased", "-w", "fields", "--hex"}},
		{args: []string{"kv", "get", "gold/none", "-w", "json"}},
		{args: []string{"kv", "get", "gold/none", "-w", "fields"}},
		{args: []string{"member", "list"}},
		{args: []string{"member", "list", "-w", "json"}},
		{args: []string{"member", "list", "-w", "json", "--hex"}},
		{args: []string{"member", "list", "-w", "fields"}},
		{args: []string{"member", "list", "-w", "table"}},
		{args: []string{"endpoint", "hashkv"}},
		{args: []string{"endpoint", "hashkv", "-w", "table"}},
		{args: []string{"endpoint", "hashkv", "-w", "json"}},
		{args: []string{"endpoint", "hashkv", "-w", "fields"}},
		{args: []string{"endpoint", "health"}, norm: []func(string) string{normTook}},
		{args: []string{"endpoint", "health", "-w", "json"}, norm: []func(string) string{normTook}},
		{args: []string{"endpoint", "health", "-w", "fields"}, norm: []func(string) string{normTook}},
		{args: []string{"lease", "timetolive", leaseHex, "--keys"}, norm: []func(string) string{normTTL}},
		{args: []string{"lease", "timetolive", leaseHex, "--keys", "-w", "json"}, norm: []func(string) string{normTTL}},
		{args: []string{"lease", "timetolive", leaseHex, "--keys", "-w", "fields"}, norm: []func(string) string{normTTL}},
		{args: []string{"lease", "timetolive", "abc"}},

		// Writes, each replayed from the same state.
		{args: []string{"kv", "put", "gold/w/a", "v1"}, setup: reset("gold/w/")},
		{args: []string{"kv", "put", "gold/w/a", "v2", "--prev-kv"}, setup: reset("gold/w/", "gold/w/a", "old")},
		{args: []string{"kv", "put", "gold/w/a", "v2", "--prev-kv", "-w", "json"}, setup: reset("gold/w/", "gold/w/a", "old"), norm: []func(string) string{normRevisions}},
		{args: []string{"kv", "put", "gold/w/a", "v2", "--prev-kv", "-w", "fields"}, setup: reset("gold/w/", "gold/w/a", "old"), norm: []func(string) string{normRevisions}},
		{args: []string{"kv", "del", "gold/w/", "--prefix", "--prev-kv"}, setup: reset("gold/w/", "gold/w/a", "1", "gold/w/b", "2")},
		{args: []string{"kv", "del", "gold/w/", "--prefix", "-w", "json"}, setup: reset("gold/w/", "gold/w/a", "1", "gold/w/b", "2"), norm: []func(string) string{normRevisions}},
		{args: []string{"kv", "del", "gold/w/a", "--prev-kv", "-w", "fields"}, setup: reset("gold/w/", "gold/w/a", "1"), norm: []func(string) string{normRevisions}},
		{args: []string{"kv", "del", "gold/w/none"}, setup: reset("gold/w/")},
		{args: []string{"kv", "txn"}, stdin: txnIn, setup: txnReset},
		{args: []string{"kv", "txn", "-i"}, stdin: txnIn, setup: reset("gold/t/", "gold/t/k", "other")},
		{args: []string{"kv", "txn", "-w", "json"}, stdin: txnIn, setup: txnReset, norm: []func(string) string{normRevisions}},
		{args: []string{"kv", "txn", "-w", "fields"}, stdin: txnIn, setup: txnReset, norm: []func(string) string{normRevisions}},
		{args: []string{"lease", "grant", "100"}, norm: []func(string) string{normLeases}},
		{args: []string{"lease", "grant", "100", "-w", "json"}, norm: []func(string) string{normLeases, normRevisions}},
		{args: []string{"lease", "grant", "100", "-w", "fields"}, norm: []func(string) string{normLeases, normRevisions}},

		// Errors: the same line and exit code.
		{args: []string{"kv", "get"}},
		{args: []string{"kv", "get", "k", "--prefix", "--from-key"}},
		{args: []string{"kv", "get", "k", "--order", "SIDEWAYS"}},
		{args: []string{"kv", "get", "k", "-w", "xml"}},
		{args: []string{"kv", "get", "k", "--consistency", "x"}},
		{args: []string{"kv", "get", "gold/a", "--rev", "100000"}},
		{args: []string{"kv", "put"}},
		{args: []string{"kv", "put", "k", "v", "--lease", "zz"}},
		{args: []string{"kv", "put", "gold/w/k", "v", "--lease", "123abc"}},
		{args: []string{"kv", "del"}},
		{args: []string{"kv", "txn", "extra"}},
		{args: []string{"lease", "grant"}},
		{args: []string{"lease", "grant", "ten"}},
		{args: []string{"lease", "revoke", "zz"}},
		{args: []string{"lease", "revoke", "123abc"}},
		{args: []string{"member", "add"}},
		{args: []string{"member", "add", "n"}},
		{args: []string{"member", "remove", "zz"}},
		{args: []string{"member", "remove", "123abc"}},
	} {
		name := strings.Join(tc.args, " ")
		if tc.setup != nil {
			tc.setup()
		}
		want := runEtcdctl(ctx, t, bin, eps, tc.stdin, etcdctlArgs(tc.args)...)
		if tc.setup != nil {
			tc.setup()
		}
		got := execute(ctx, tc.stdin, append(tc.args, "--endpoints="+eps)...)
		for _, n := range tc.norm {
			want.stdout, got.stdout = n(want.stdout), n(got.stdout)
		}
		if got.stdout != want.stdout {
			t.Errorf("%s: stdout differs from etcdctl's\nconcord: %q\netcdctl: %q", name, got.stdout, want.stdout)
		}
		if got.code != want.code || got.stderr != want.stderr {
			t.Errorf("%s: exit and stderr differ from etcdctl's\nconcord: %d %q\netcdctl: %d %q", name, got.code, got.stderr, want.code, want.stderr)
		}
	}

	t.Run("watch", func(t *testing.T) {
		first := mustPut(t, cl, "gold/watch", "one").Header.Revision
		mustPut(t, cl, "gold/watch", "two")
		for _, format := range []string{"simple", "json", "fields"} {
			args := []string{"kv", "watch", "gold/watch", "--rev", fmt.Sprint(first), "--prev-kv", "-w", format}
			want := watchEtcdctl(t, bin, eps, etcdctlArgs(args))
			x := cli{t: t, endpoints: c.Endpoints()}
			out, stop := x.background(args...)
			waitFor(t, 10*time.Second, "concord's watch output", func() bool { return len(out.String()) >= len(want) })
			if got := stop(); got.stdout != want || got.err != nil {
				t.Errorf("watch -w %s differs from etcdctl's (err %v)\nconcord: %q\netcdctl: %q", format, got.err, got.stdout, want)
			}
		}
	})
}

// watchEtcdctl runs `etcdctl watch` over two events that already happened
// and returns its output once both are printed; etcdctl never exits by
// itself, so it is killed then.
func watchEtcdctl(t *testing.T, bin, endpoints string, args []string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, append([]string{"--endpoints=" + endpoints}, args...)...)
	cmd.Env = etcdctlEnv()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	// Two events, the second with a previous value: simple prints 3 + 5
	// lines, json one response line, fields three key-values, each ending
	// with its "Lease" line.
	complete := func() bool {
		s := out.String()
		switch {
		case strings.Contains(strings.Join(args, " "), "-w json"):
			return strings.HasSuffix(s, "}\n")
		case strings.Contains(strings.Join(args, " "), "-w fields"):
			return strings.Count(s, `Lease" : `) == 3
		}
		return strings.Count(s, "\n") == 8
	}
	waitFor(t, 10*time.Second, "etcdctl's watch output", complete)
	if s := errOut.String(); s != "" {
		t.Errorf("etcdctl %v: stderr %q", args, s)
	}
	return out.String()
}
