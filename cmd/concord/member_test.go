package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/concordkv/concord/internal/testcluster"
)

// TestMember drives member list, add (a learner that never starts, so the
// one voter keeps its quorum), update, promote and remove.
func TestMember(t *testing.T) {
	c := testcluster.Start(t, 1)
	cl := c.Client()
	x := newCLI(t, c)

	ml, err := cl.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	self := ml.Members[0]
	clusterID := ml.Header.ClusterId
	selfLine := fmt.Sprintf("%x, started, %s, %s, %s, false\n", self.ID, self.Name, self.PeerURLs[0], self.ClientURLs[0])
	wantOutput(t, "member list", x.ok("member", "list"), selfLine)
	wantOutput(t, "member list --consistency s", x.ok("member", "list", "--consistency", "s"), selfLine)

	var hexList struct {
		Header struct {
			ClusterID string `json:"cluster_id"`
		} `json:"header"`
		Members []struct {
			ID   string `json:"ID"`
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(x.ok("member", "list", "-w", "json", "--hex")), &hexList); err != nil {
		t.Fatal(err)
	}
	if hexList.Header.ClusterID != fmt.Sprintf("%x", clusterID) || len(hexList.Members) != 1 || hexList.Members[0].ID != fmt.Sprintf("%x", self.ID) {
		t.Errorf("member list -w json --hex: %+v", hexList)
	}

	peer := "http://" + deadEndpoint(t)
	out := x.ok("member", "add", "learner1", "--peer-urls", peer, "--learner")
	lines := strings.Split(out, "\n")
	var idHex, clusterHex string
	if _, err := fmt.Sscanf(lines[0], "Member %s added as learner to cluster %s", &idHex, &clusterHex); err != nil {
		t.Fatalf("member add: %v: %q", err, out)
	}
	if clusterHex != fmt.Sprintf("%x", clusterID) {
		t.Errorf("member add: cluster %s, want %x", clusterHex, clusterID)
	}
	// The initial cluster lists the members in the server's order.
	initial := []string{self.Name + "=" + self.PeerURLs[0], "learner1=" + peer}
	if m := regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`).FindStringSubmatch(out); m != nil && strings.HasPrefix(m[1], "learner1") {
		slices.Reverse(initial)
	}
	want := fmt.Sprintf("\nETCD_NAME=\"learner1\"\nETCD_INITIAL_CLUSTER=%q\nETCD_INITIAL_ADVERTISE_PEER_URLS=%q\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
		strings.Join(initial, ","), peer)
	want += strings.ReplaceAll(want, "ETCD_", "CONCORD_")
	wantOutput(t, "member add settings", strings.Join(lines[1:], "\n"), want)

	id, err := strconv.ParseUint(idHex, 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	out = x.ok("member", "list")
	if !strings.Contains(out, fmt.Sprintf("%x, unstarted, , %s, , true\n", id, peer)) {
		t.Errorf("member list after add: %q", out)
	}

	peer2 := "http://" + deadEndpoint(t)
	wantOutput(t, "member update", x.ok("member", "update", idHex, "--peer-urls", peer2),
		fmt.Sprintf("Member %16x updated in cluster %16x\n", id, clusterID))
	ml, err = cl.MemberList(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ml.Members {
		if m.ID == id && (len(m.PeerURLs) != 1 || m.PeerURLs[0] != peer2 || !m.IsLearner) {
			t.Errorf("updated member: %+v", m)
		}
	}

	// A learner that never started cannot be in sync: promotion is refused.
	r := x.run("member", "promote", idHex)
	if r.code != exitGeneral || !strings.HasPrefix(r.stderr, "Error: etcdserver: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("promote of a learner out of sync: exit %d, stderr %q", r.code, r.stderr)
	}

	wantOutput(t, "member remove", x.ok("member", "remove", idHex), fmt.Sprintf("Member %16x removed from cluster %16x\n", id, clusterID))
	wantOutput(t, "member list after remove", x.ok("member", "list"), selfLine)

	r = x.run("member", "remove", idHex)
	if r.code != exitGeneral {
		t.Errorf("remove of a removed member: exit %d", r.code)
	}
	wantOutput(t, "remove error", r.stderr, "Error: etcdserver: member not found\n")
}
