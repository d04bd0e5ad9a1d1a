package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestLease drives lease grant, timetolive, list, keep-alive and revoke,
// checking the output and the lease's state through clientv3.
func TestLease(t *testing.T) {
	c := testcluster.Start(t, 1)
	cl := c.Client()
	x := newCLI(t, c)

	out := x.ok("lease", "grant", "300")
	m := regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(300s\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lease grant: %q", out)
	}
	hexID := m[1]
	n, err := strconv.ParseInt(hexID, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	id := clientv3.LeaseID(n)
	ttl, err := cl.TimeToLive(t.Context(), id)
	if err != nil || ttl.GrantedTTL != 300 {
		t.Fatalf("granted lease through clientv3: %+v, %v", ttl, err)
	}

	x.ok("kv", "put", "lk/1", "a", "--lease", hexID)
	x.ok("kv", "put", "lk/2", "b", "--lease", hexID)

	out = x.ok("lease", "timetolive", hexID, "--keys")
	if !regexp.MustCompile(`^lease ` + hexID + ` granted with TTL\(300s\), remaining\((299|300)s\), attached keys\(\[lk/[12] lk/[12]\]\)\n$`).MatchString(out) {
		t.Errorf("lease timetolive --keys: %q", out)
	}
	var ttlJSON struct {
		ID         int64    `json:"id"`
		GrantedTTL int64    `json:"granted-ttl"`
		Keys       [][]byte `json:"keys"`
	}
	if err := json.Unmarshal([]byte(x.ok("lease", "timetolive", hexID, "--keys", "-w", "json")), &ttlJSON); err != nil {
		t.Fatal(err)
	}
	if ttlJSON.ID != n || ttlJSON.GrantedTTL != 300 || len(ttlJSON.Keys) != 2 {
		t.Errorf("lease timetolive -w json: %+v", ttlJSON)
	}

	out = x.ok("lease", "list")
	if !strings.HasPrefix(out, "found ") || !strings.Contains(out, "\n"+hexID+"\n") {
		t.Errorf("lease list does not show %s: %q", hexID, out)
	}

	out = x.ok("lease", "keep-alive", hexID, "--once")
	wantOutput(t, "keep-alive --once", out, fmt.Sprintf("lease %s keepalived with TTL(300)\n", hexID))

	// keep-alive runs until interrupted, printing each renewal.
	kaOut, stop := x.background("lease", "keep-alive", hexID)
	waitFor(t, 10*time.Second, "a keepalive", func() bool { return strings.Contains(kaOut.String(), "keepalived") })
	if r := stop(); r.err != nil || !strings.HasPrefix(r.stdout, "lease "+hexID+" keepalived with TTL(300)\n") {
		t.Errorf("interrupted keep-alive: exit %d (%v), stdout %q", r.code, r.err, r.stdout)
	}

	wantOutput(t, "revoke", x.ok("lease", "revoke", hexID), "lease "+hexID+" revoked\n")
	if n := mustGet(t, cl, "lk/", clientv3.WithPrefix()).Count; n != 0 {
		t.Errorf("%d keys of the revoked lease left", n)
	}
	wantOutput(t, "timetolive of a revoked lease", x.ok("lease", "timetolive", hexID), "lease "+hexID+" already expired\n")

	r := x.run("lease", "revoke", hexID)
	if r.code != exitGeneral {
		t.Errorf("revoke of a revoked lease: exit %d", r.code)
	}
	wantOutput(t, "revoke error", r.stderr, "Error: failed to revoke lease (etcdserver: requested lease not found)\n")

	r = x.run("lease", "keep-alive", hexID, "--once")
	if r.code != exitBadConnection {
		t.Errorf("keep-alive --once of a revoked lease: exit %d", r.code)
	}
	wantOutput(t, "keep-alive --once error", r.stderr, "Error: etcdserver: requested lease not found\n")

	// Without --once, keep-alive of a lease that is gone ends by itself.
	r = x.run("lease", "keep-alive", hexID)
	if r.err != nil {
		t.Errorf("keep-alive of a revoked lease: %v", r.err)
	}
	wantOutput(t, "keep-alive of a revoked lease", r.stdout, "lease "+hexID+" expired or revoked.\n")

	out = x.ok("lease", "grant", "60", "-w", "fields")
	if !regexp.MustCompile(`"ID" : \d+\n"TTL" : 60\n$`).MatchString(out) {
		t.Errorf("lease grant -w fields: %q", out)
	}
}
