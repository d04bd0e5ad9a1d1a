package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestElectCommand runs `concord elect` in-process against one member:
// etcdctl elect's arguments, output and exit codes.
func TestElectCommand(t *testing.T) {
	c := testcluster.Start(t, 1)
	x := newCLI(t, c)
	cl := c.Client()

	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"elect"}, "elect takes one election name argument and an optional proposal argument"},
		{[]string{"elect", "e"}, "no proposal argument but -l not set"},
		{[]string{"elect", "-l", "e", "v"}, "proposal given but -l is set"},
		{[]string{"elect", "e", "v", "extra"}, "elect takes one election name argument and an optional proposal argument"},
	} {
		r := x.run(tc.args...)
		if r.code != exitBadArgs || r.stderr != "Error: "+tc.msg+"\n" {
			t.Errorf("concord %s: exit %d, stderr %q; want %d, %q", strings.Join(tc.args, " "), r.code, r.stderr, exitBadArgs, tc.msg)
		}
	}
	if r := x.run("elect", "-w", "table", "e", "v"); r.code != exitBadFeature {
		t.Errorf("elect -w table: exit %d, want %d", r.code, exitBadFeature)
	}

	listen, stopListen := x.background("elect", "-l", "e")
	jsonListen, stopJSON := x.background("elect", "-l", "e", "-w", "json")
	first, stopFirst := x.background("elect", "e", "v1")
	waitFor(t, 10*time.Second, "the first candidate to be elected", func() bool { return strings.Count(first.String(), "\n") == 2 })
	lines := strings.Split(strings.TrimSpace(first.String()), "\n")
	key1 := lines[0]
	if !strings.HasPrefix(key1, "e/") || lines[1] != "v1" {
		t.Fatalf("elect printed %q, want the leader's key and value", first.String())
	}
	second, stopSecond := x.background("elect", "e", "v2")
	waitFor(t, 10*time.Second, "the second candidacy", func() bool { return mustGet(t, cl, "e/", clientv3.WithPrefix()).Count == 2 })
	if second.String() != "" {
		t.Fatalf("second candidate printed %q while the first led", second.String())
	}
	if r := stopFirst(); r.err != nil {
		t.Fatalf("interrupted leader: exit %d: %v", r.code, r.err)
	}
	waitFor(t, 10*time.Second, "the second candidate to be elected", func() bool { return strings.Count(second.String(), "\n") == 2 })
	key2 := strings.Split(second.String(), "\n")[0]
	want := key1 + "\nv1\n" + key2 + "\nv2\n"
	waitFor(t, 5*time.Second, "the listener to print both leaders", func() bool { return listen.String() == want })
	if r := stopSecond(); r.err != nil {
		t.Fatal(r.err)
	}
	if n := mustGet(t, cl, "e/", clientv3.WithPrefix()).Count; n != 0 {
		t.Errorf("%d candidates left after both resigned", n)
	}
	if r := stopListen(); r.err != nil || r.stdout != want {
		t.Errorf("elect -l: exit %d, %v, printed %q, want %q", r.code, r.err, r.stdout, want)
	}

	// -w json prints etcdctl's JSON of a range response per leader.
	waitFor(t, 5*time.Second, "two JSON leaders", func() bool { return strings.Count(jsonListen.String(), "\n") == 2 })
	stopJSON()
	var values []string
	for line := range strings.Lines(jsonListen.String()) {
		var resp struct {
			Kvs []struct {
				Value []byte `json:"value"`
			} `json:"kvs"`
		}
		if err := json.Unmarshal([]byte(line), &resp); err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("elect -l -w json line %q: %v", line, err)
		}
		values = append(values, string(resp.Kvs[0].Value))
	}
	if !slices.Equal(values, []string{"v1", "v2"}) {
		t.Errorf("elect -l -w json values %q", values)
	}
}
