package etcdapi_test

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/concordkv/concord/agent/agenttest"
	"github.com/concordkv/concord/internal/testcluster"
)

// etcdctlPath (watch_etcdctl_test.go) locates the real etcdctl.

// The real etcdctl's lease commands against a three-member cluster,
// through a follower (every lease operation is forwarded or proposed from
// there), with etcdctl's own output.
func TestEtcdctlLease(t *testing.T) {
	bin := testcluster.Tool(t, "etcdctl", "ETCDCTL")
	c := agenttest.Start(t, 3, steadyOptions())
	ep := c.Members[c.Follower()].ClientAddr
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"--endpoints", ep}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("etcdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	expect := func(out, pattern string) []string {
		t.Helper()
		m := regexp.MustCompile(`^` + pattern + `$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("etcdctl printed %q, want %q", out, pattern)
		}
		return m
	}

	id := expect(run("lease", "grant", "60"), `lease ([0-9a-f]{16}) granted with TTL\(60s\)\n`)[1]
	expect(run("put", "--lease="+id, "leased/key", "value"), "OK\n")
	expect(run("put", "--lease="+id, "leased/other", "value"), "OK\n")
	expect(run("lease", "keep-alive", "--once", id), "lease "+id+` keepalived with TTL\(60\)\n`)
	remaining := expect(run("lease", "timetolive", "--keys", id),
		"lease "+id+` granted with TTL\(60s\), remaining\((\d+)s\), attached keys\(\[leased/key leased/other\]\)\n`)[1]
	// A second or two have passed (etcdctl is a new process each time).
	if r, _ := strconv.Atoi(remaining); r < 50 || r > 60 {
		t.Errorf("remaining TTL %ss right after a keepalive", remaining)
	}
	expect(run("lease", "timetolive", id), "lease "+id+` granted with TTL\(60s\), remaining\(\d+s\)\n`)
	expect(run("lease", "list"), "found 1 leases\n"+id+"\n")
	expect(run("get", "--prefix", "--keys-only", "leased/"), "leased/key\n\nleased/other\n\n")
	expect(run("lease", "revoke", id), "lease "+id+" revoked\n")
	expect(run("get", "--prefix", "--count-only", "--write-out=fields", "leased/"), `(?s).*"Count" : 0\n.*`)
	expect(run("lease", "timetolive", id), "lease "+id+" already expired\n")
	expect(run("lease", "list"), "found 0 leases\n")

	// Errors as etcd words them.
	cmd := exec.CommandContext(t.Context(), bin, "--endpoints", ep, "lease", "revoke", id)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "etcdserver: requested lease not found") {
		t.Fatalf("revoke of a revoked lease: %v\n%s", err, out)
	}
	cmd = exec.CommandContext(t.Context(), bin, "--endpoints", ep, "put", "--lease=1234abcd", "k", "v")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "etcdserver: requested lease not found") {
		t.Fatalf("put with an unknown lease: %v\n%s", err, out)
	}
	c.CheckConverged()
}
