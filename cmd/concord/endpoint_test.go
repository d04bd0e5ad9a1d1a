package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestEndpoint drives endpoint health, status and hashkv against a
// three-member cluster, with and without --cluster, then with one member
// killed: the report names it and the exit is non-zero.
func TestEndpoint(t *testing.T) {
	c := testcluster.Start(t, 3)
	eps := c.Endpoints()
	x := newCLI(t, c)

	out := x.ok("endpoint", "health")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("endpoint health: %q", out)
	}
	for i, l := range lines {
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(eps[i]) + ` is healthy: successfully committed proposal: took = \d+(\.\d+)?(µs|ms|s)$`)
		if !re.MatchString(l) {
			t.Errorf("endpoint health line %d: %q", i, l)
		}
	}

	var health []struct {
		Endpoint string `json:"endpoint"`
		Health   bool   `json:"health"`
		Took     string `json:"took"`
	}
	if err := json.Unmarshal([]byte(x.ok("endpoint", "health", "--cluster", "-w", "json")), &health); err != nil {
		t.Fatal(err)
	}
	if len(health) != 3 {
		t.Fatalf("endpoint health --cluster: %d endpoints, want 3", len(health))
	}
	for _, h := range health {
		if !h.Health || !strings.HasPrefix(h.Endpoint, "http://127.0.0.1:") || h.Took == "" {
			t.Errorf("endpoint health --cluster: %+v", h)
		}
	}

	var status []struct {
		Endpoint string
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader   uint64 `json:"leader"`
			RaftTerm uint64 `json:"raftTerm"`
		}
	}
	if err := json.Unmarshal([]byte(x.ok("endpoint", "status", "--cluster", "-w", "json")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status) != 3 {
		t.Fatalf("endpoint status --cluster: %d endpoints, want 3", len(status))
	}
	leaders, members := 0, map[uint64]bool{}
	for _, s := range status {
		members[s.Status.Header.MemberID] = true
		if s.Status.Leader == s.Status.Header.MemberID {
			leaders++
		}
		if s.Status.Leader != status[0].Status.Leader || s.Status.RaftTerm == 0 {
			t.Errorf("endpoint status: %+v disagrees on the leader or has no term", s)
		}
	}
	if leaders != 1 || len(members) != 3 {
		t.Errorf("endpoint status: %d leaders among %d distinct members, want 1 among 3", leaders, len(members))
	}

	table := x.ok("endpoint", "status", "-w", "table")
	if lines := strings.Count(table, "\n"); lines != 3+4 || !strings.Contains(table, " ENDPOINT ") || !strings.Contains(table, " IS LEADER ") {
		t.Errorf("endpoint status -w table:\n%s", table)
	}

	// Every member has applied the last write once it served a linearizable
	// read; then all hash the same history.
	cl := c.Client()
	head := mustPut(t, cl, "hash/k", "v").Header.Revision
	for _, ep := range eps {
		if r := execute(t.Context(), "", "kv", "get", "hash/k", "--endpoints", ep); r.stdout != "hash/k\nv\n" {
			t.Fatalf("get from %s: %q, %v", ep, r.stdout, r.err)
		}
	}
	out = x.ok("endpoint", "hashkv", "--rev", fmt.Sprint(head))
	rows := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(rows) != 3 {
		t.Fatalf("endpoint hashkv: %q", out)
	}
	for i, row := range rows {
		parts := strings.Split(row, ", ")
		first := strings.Split(rows[0], ", ")
		if len(parts) != 3 || parts[0] != eps[i] || parts[1] != first[1] || parts[2] != fmt.Sprint(head) {
			t.Errorf("endpoint hashkv row %d: %q (first %q)", i, row, rows[0])
		}
	}

	c.Kill(2)
	// If it led, the other two elect a new leader first.
	survivors := c.Client(eps[0], eps[1])
	waitFor(t, 15*time.Second, "a leader among the survivors", func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := survivors.Put(ctx, "hash/k", "after kill")
		return err == nil
	})
	r := x.run("endpoint", "health", "--command-timeout", "1s")
	if r.code != exitGeneral {
		t.Errorf("endpoint health with a member down: exit %d, want %d", r.code, exitGeneral)
	}
	wantOutput(t, "stderr", r.stderr, eps[2]+" is unhealthy: failed to commit proposal: context deadline exceeded\nError: unhealthy cluster\n")
	if n := strings.Count(r.stdout, "is healthy"); n != 2 {
		t.Errorf("endpoint health with a member down: %d healthy, want 2: %q", n, r.stdout)
	}

	r = x.run("endpoint", "status", "--command-timeout", "1s")
	if r.code != exitGeneral || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("endpoint status with a member down: exit %d, stdout %q", r.code, r.stdout)
	}
	wantOutput(t, "stderr", r.stderr, "Failed to get the status of endpoint "+eps[2]+" (context deadline exceeded)\nError: context deadline exceeded\n")
}
