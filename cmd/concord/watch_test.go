package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestWatch drives kv watch: history from a revision, live events on a
// prefix and a range, JSON output, the exec variant, an interrupt (exit 0)
// and a cancel by the server (exit 5).
func TestWatch(t *testing.T) {
	c := testcluster.Start(t, 1)
	cl := c.Client()
	x := newCLI(t, c)

	r1 := mustPut(t, cl, "w/a", "1").Header.Revision
	mustPut(t, cl, "w/a", "2")
	if _, err := cl.Delete(t.Context(), "w/a"); err != nil {
		t.Fatal(err)
	}

	t.Run("history with prev-kv", func(t *testing.T) {
		want := "PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\nDELETE\nw/a\n2\nw/a\n\n"
		out, stop := x.background("kv", "watch", "w/a", "--rev", fmt.Sprint(r1), "--prev-kv")
		waitFor(t, 10*time.Second, "three events", func() bool { return len(out.String()) >= len(want) })
		r := stop()
		if r.err != nil {
			t.Fatalf("interrupted watch: exit %d: %v", r.code, r.err)
		}
		wantOutput(t, "watch --prev-kv", r.stdout, want)
	})

	t.Run("live prefix and range", func(t *testing.T) {
		// Starting at the next revision makes the watch see every later
		// event however long it takes to be set up.
		next := mustGet(t, cl, "any").Header.Revision + 1
		prefixOut, stopPrefix := x.background("kv", "watch", "w/", "--prefix", "--rev", fmt.Sprint(next))
		rangeOut, stopRange := x.background("kv", "watch", "w/b", "w/d", "--rev", fmt.Sprint(next))
		mustPut(t, cl, "w/b", "b1")
		mustPut(t, cl, "other", "not watched")
		mustPut(t, cl, "w/d", "not in [w/b, w/d)")
		if _, err := cl.Delete(t.Context(), "w/b"); err != nil {
			t.Fatal(err)
		}
		wantPrefix := "PUT\nw/b\nb1\nPUT\nw/d\nnot in [w/b, w/d)\nDELETE\nw/b\n\n"
		wantRange := "PUT\nw/b\nb1\nDELETE\nw/b\n\n"
		waitFor(t, 10*time.Second, "prefix events", func() bool { return len(prefixOut.String()) >= len(wantPrefix) })
		waitFor(t, 10*time.Second, "range events", func() bool { return len(rangeOut.String()) >= len(wantRange) })
		wantOutput(t, "watch --prefix", stopPrefix().stdout, wantPrefix)
		wantOutput(t, "watch range", stopRange().stdout, wantRange)
	})

	t.Run("json", func(t *testing.T) {
		out, stop := x.background("kv", "watch", "w/a", "--rev", fmt.Sprint(r1), "-w", "json")
		waitFor(t, 10*time.Second, "a JSON line", func() bool { return strings.HasSuffix(out.String(), "}\n") })
		stop()
		var resp struct {
			Header struct {
				Revision int64 `json:"revision"`
			}
			Events []struct {
				Type int `json:"type"`
				Kv   struct {
					Key         []byte `json:"key"`
					Value       []byte `json:"value"`
					ModRevision int64  `json:"mod_revision"`
				} `json:"kv"`
			}
			Canceled bool
		}
		if err := json.Unmarshal([]byte(out.String()), &resp); err != nil {
			t.Fatalf("watch -w json: %v: %q", err, out.String())
		}
		if len(resp.Events) != 3 || resp.Events[0].Kv.ModRevision != r1 || string(resp.Events[1].Kv.Value) != "2" || resp.Events[2].Type != 1 {
			t.Errorf("watch -w json events: %+v", resp.Events)
		}
		if resp.Header.Revision < r1+2 || resp.Canceled {
			t.Errorf("watch -w json header revision %d (want >= %d), canceled %v", resp.Header.Revision, r1+2, resp.Canceled)
		}
	})

	t.Run("exec", func(t *testing.T) {
		rev := mustPut(t, cl, "w/e", "exec me").Header.Revision
		out, stop := x.background("kv", "watch", "w/e", "--rev", fmt.Sprint(rev), "--",
			"sh", "-c", `echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION $CONCORD_WATCH_KEY"`)
		want := fmt.Sprintf("PUT\nw/e\nexec me\n\"PUT\" \"w/e\" \"exec me\" %d \"w/e\"\n", rev)
		waitFor(t, 10*time.Second, "the command's output", func() bool { return len(out.String()) >= len(want) })
		wantOutput(t, "watch -- sh", stop().stdout, want)
	})

	t.Run("canceled by the server", func(t *testing.T) {
		head := mustPut(t, cl, "w/c", "x").Header.Revision
		if _, err := cl.Compact(t.Context(), head); err != nil {
			t.Fatal(err)
		}
		r := x.run("kv", "watch", "w/a", "--rev", fmt.Sprint(r1))
		if r.code != exitInterrupted {
			t.Fatalf("watch from a compacted revision: exit %d, want %d (stderr %q)", r.code, exitInterrupted, r.stderr)
		}
		wantOutput(t, "stderr", r.stderr, "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n")
	})
}
