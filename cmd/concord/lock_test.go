package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestLockCommand runs `concord lock` and `concord lock list` in-process
// against one member.
func TestLockCommand(t *testing.T) {
	c := testcluster.Start(t, 1)
	x := newCLI(t, c)
	cl := c.Client()

	t.Run("command", func(t *testing.T) {
		r := x.run("lock", "cmd", "--", "sh", "-c", `echo "$CONCORD_LOCK_KEY $CONCORD_FENCING_TOKEN $ETCD_LOCK_KEY"; exit 3`)
		if r.code != 3 {
			t.Fatalf("exit %d, want the command's 3 (stderr %q)", r.code, r.stderr)
		}
		// Key and token go to stderr, so that stdout is the command's.
		held := strings.SplitN(r.stderr, "\n", 3)
		if len(held) < 3 || !strings.HasPrefix(held[0], "cmd/") {
			t.Fatalf("stderr %q does not start with the key and the token", r.stderr)
		}
		key, token := held[0], held[1]
		if _, err := strconv.ParseInt(token, 10, 64); err != nil {
			t.Fatalf("token line %q", token)
		}
		wantOutput(t, "the command's environment", r.stdout, key+" "+token+" "+key+"\n")
		wantOutput(t, "error line", held[2], "Error: sh: exit status 3\n")
		if n := mustGet(t, cl, "cmd/", clientv3.WithPrefix()).Count; n != 0 {
			t.Errorf("%d keys left under cmd/ after the command", n)
		}
		wantOutput(t, "success", x.ok("lock", "cmd", "--", "true"), "")
	})

	t.Run("hold until interrupted, waiters served in order", func(t *testing.T) {
		out1, stop1 := x.background("lock", "--ttl", "7", "held")
		waitFor(t, 10*time.Second, "the first holder's key and token", func() bool { return strings.Count(out1.String(), "\n") == 2 })
		key1, tok1 := keyAndToken(t, out1.String())
		lease := key1[len("held/"):]
		if createRev(t, cl, key1) != tok1 {
			t.Errorf("token %d is not %s's create revision %d", tok1, key1, createRev(t, cl, key1))
		}
		id, _ := parseLeaseID(lease)
		if ttl, err := cl.TimeToLive(t.Context(), id); err != nil || ttl.GrantedTTL != 7 {
			t.Errorf("key %s: lease %s: %+v %v, want granted TTL 7 (etcdctl's key layout, --ttl in seconds)", key1, lease, ttl, err)
		}

		out2, stop2 := x.background("lock", "held")
		waitFor(t, 10*time.Second, "a waiter in lock list", func() bool { return strings.Count(x.ok("lock", "list", "held"), "\n") == 2 })
		rows := strings.Split(strings.TrimSpace(x.ok("lock", "list", "held")), "\n")
		if want := fmt.Sprintf("%s, %d, %s, holder, ", key1, tok1, lease); !strings.HasPrefix(rows[0], want) {
			t.Errorf("lock list row 0 %q, want prefix %q", rows[0], want)
		}
		if !strings.HasPrefix(rows[1], "held/") || !strings.Contains(rows[1], ", waiting, ") {
			t.Errorf("lock list row 1 %q, want a waiter", rows[1])
		}
		if !strings.HasSuffix(rows[0], fmt.Sprintf(":%d", os.Getpid())) {
			t.Errorf("lock list row %q does not name the holder's process", rows[0])
		}
		table := x.ok("lock", "list", "held", "-w", "table")
		if !strings.Contains(table, " KEY ") || !strings.Contains(table, " TOKEN ") || !strings.Contains(table, key1) {
			t.Errorf("lock list -w table:\n%s", table)
		}
		if json := x.ok("lock", "list", "held", "-w", "json"); !strings.HasPrefix(json, `{"header":`) || strings.Count(json, `"create_revision"`) != 2 {
			t.Errorf("lock list -w json: %s", json)
		}
		time.Sleep(200 * time.Millisecond)
		if out2.String() != "" {
			t.Fatalf("the waiter printed %q while the lock was held", out2.String())
		}

		if r := stop1(); r.err != nil {
			t.Fatalf("interrupted holder: exit %d: %v", r.code, r.err)
		}
		waitFor(t, 10*time.Second, "the waiter to hold", func() bool { return strings.Count(out2.String(), "\n") == 2 })
		key2, tok2 := keyAndToken(t, out2.String())
		if tok2 <= tok1 || key2 == key1 {
			t.Errorf("second holder %s token %d after %s token %d", key2, tok2, key1, tok1)
		}
		if rows := strings.TrimSpace(x.ok("lock", "list", "held")); !strings.HasPrefix(rows, key2+", ") || strings.Contains(rows, "\n") {
			t.Errorf("lock list after the handover: %q", rows)
		}
		if r := stop2(); r.err != nil {
			t.Fatal(r.err)
		}
		wantOutput(t, "lock list of a free lock", x.ok("lock", "list", "held"), "")
	})

	t.Run("lost while the command runs", func(t *testing.T) {
		out, errOut := &syncBuffer{}, &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(t.Context(), x.withEndpoints([]string{"lock", "lost", "--", "sh", "-c",
				`trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.05; done`}), out, errOut)
		}()
		waitFor(t, 10*time.Second, "the command to start", func() bool { return strings.Contains(out.String(), "started") })
		key, _ := keyAndToken(t, errOut.String())
		id, err := parseLeaseID(key[len("lost/"):])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Revoke(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		select {
		case err = <-done:
		case <-time.After(15 * time.Second):
			t.Fatal("concord lock still runs 15s after its lock was lost")
		}
		if code := exitCode(err); code != exitGeneral || !strings.Contains(out.String(), "got-term") {
			t.Errorf("exit %d, stdout %q: want 1 and the command stopped by SIGTERM", code, out.String())
		}
		if err == nil || !strings.HasPrefix(err.Error(), "lock lost lost while sh ran (it was sent SIGTERM)") {
			t.Errorf("error %v does not report the loss", err)
		}
	})

	t.Run("arguments", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"lock"}, exitBadArgs, "lock takes a lock name argument and an optional command to execute"},
			{[]string{"lock", "n", "--"}, exitBadArgs, "bad number of arguments (found separator --, but no commands)"},
			{[]string{"lock", "a", "b", "--", "true"}, exitBadArgs, "lock takes one lock name before --"},
			{[]string{"lock", "n", "-w", "table"}, exitBadFeature, "table not supported as output format"},
			{[]string{"lock", "list"}, exitBadArgs, "lock list takes one lock name argument"},
			{[]string{"lock", "list", "n", "-w", "fields"}, 0, ""},
		} {
			r := x.run(tc.args...)
			if r.code != tc.code || (tc.msg != "" && r.stderr != "Error: "+tc.msg+"\n") {
				t.Errorf("concord %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.msg)
			}
		}
		if r := x.run("lock", "--ttl", "0", "n"); r.code == 0 || !strings.Contains(r.stderr, "below one second") {
			t.Errorf("--ttl 0: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// keyAndToken parses the two lines `concord lock` prints.
func keyAndToken(t *testing.T, out string) (string, int64) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("lock printed %q, want a key line and a token line", out)
	}
	tok, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("token line %q", lines[1])
	}
	return lines[0], tok
}

func createRev(t *testing.T, cl *clientv3.Client, key string) int64 {
	t.Helper()
	resp := mustGet(t, cl, key)
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].CreateRevision
}
