package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// failoverBound is the asserted limit on electing a new leader after the
// old one is SIGKILLed. Raft needs about two election timeouts (1 s with
// fastRaft); the bound is generous so that a loaded 2-core machine does not
// make the test flaky, and the measured time is logged.
const failoverBound = 10 * time.Second

// TestEtcdctlThreeNodeCluster is the "Replicated core" issue's end-to-end
// test: three concord processes driven by the real etcdctl (KV, txn,
// membership, status), a learner added and promoted, the leader SIGKILLed
// while writes continue through the others, the killed member restarted,
// and every member holding the same HashKV at the same revision.
func TestEtcdctlThreeNodeCluster(t *testing.T) {
	requireEtcdctl(t)
	c := newCluster(t, 3)
	all := c.members

	t.Run("kv", func(t *testing.T) { checkEtcdctlKV(t, c) })
	t.Run("txn", func(t *testing.T) { checkEtcdctlTxn(t, c) })
	t.Run("membership and status", func(t *testing.T) { checkEtcdctlMembership(t, c, all) })
	if t.Failed() {
		t.FailNow()
	}

	n3 := addLearnerAndPromote(t, c)
	// The new member serves local reads of data written before it joined.
	if got := c.mustCtl([]*member{n3}, "get", "mykey", "--print-value-only", "--consistency=s"); got != "Hello, etcd!\n" {
		t.Fatalf("serializable get on new member n3 = %q, want %q", got, "Hello, etcd!\n")
	}
	if got := c.mustCtl([]*member{n3}, "get", "mykey", "--print-value-only", "--consistency=l"); got != "Hello, etcd!\n" {
		t.Fatalf("linearizable get on new member n3 = %q, want %q", got, "Hello, etcd!\n")
	}

	killed := killLeaderAndKeepWriting(t, c)

	c.restart(killed)
	rev := headerRevision(t, c, c.members)
	hash := c.hashKVCtl(c.members, rev)
	t.Logf("after restarting %s: all %d members agree on HashKV %#x at revision %d", killed.name, len(c.members), hash, rev)
	// The restarted member has applied rev (it answered HashKV at rev), so
	// its local state holds the writes made while it was down.
	if got := c.mustCtl([]*member{killed}, "get", "after", "--prefix", "--count-only", "--consistency=s", "-w", "fields"); !strings.Contains(got, `"Count" : 50`) {
		t.Errorf("restarted %s: count of prefix after = %q, want 50", killed.name, got)
	}
	if n := strings.Count(c.mustCtl(c.members, "member", "list"), ", started, "); n != 4 {
		t.Errorf("member list after restart shows %d started members, want 4", n)
	}
}

// checkEtcdctlKV drives put, get (--prefix, --rev, --limit, --keys-only,
// --count-only) and del through etcdctl.
func checkEtcdctlKV(t *testing.T, c *cluster) {
	all := c.members
	if got := c.mustCtl(all, "put", "mykey", "Hello, etcd!"); got != "OK\n" {
		t.Fatalf("put mykey printed %q, want OK", got)
	}
	if got := c.mustCtl(all, "get", "mykey", "--print-value-only"); got != "Hello, etcd!\n" {
		t.Fatalf("get mykey = %q", got)
	}

	// Two writes of one key: --rev reads the first, and the revisions are
	// the ones the puts returned.
	rev1 := putRevision(t, c, "foo", "one")
	rev2 := putRevision(t, c, "foo", "two")
	if rev2 != rev1+1 {
		t.Errorf("consecutive puts got revisions %d and %d, want consecutive", rev1, rev2)
	}
	if got := c.mustCtl(all, "get", "foo", fmt.Sprintf("--rev=%d", rev1), "--print-value-only"); got != "one\n" {
		t.Errorf("get foo --rev=%d = %q, want one", rev1, got)
	}
	var foo pb.RangeResponse
	if err := c.ctlJSON(all, &foo, "get", "foo"); err != nil {
		t.Fatal(err)
	}
	if len(foo.Kvs) != 1 || string(foo.Kvs[0].Value) != "two" || foo.Kvs[0].CreateRevision != rev1 ||
		foo.Kvs[0].ModRevision != rev2 || foo.Kvs[0].Version != 2 {
		t.Errorf("get foo -w json = %v, want value two, create %d, mod %d, version 2", foo.Kvs, rev1, rev2)
	}

	// 100 keys in one txn: one revision for all of them.
	var stdin strings.Builder
	stdin.WriteString("\n") // no compares
	for i := range 100 {
		fmt.Fprintf(&stdin, "put k%02d v%02d\n", i, i)
	}
	stdin.WriteString("\n\n") // no failure ops
	if r := c.ctl(all, stdin.String(), "txn"); r.code != 0 || !strings.HasPrefix(r.stdout, "SUCCESS") || strings.Count(r.stdout, "OK") != 100 {
		t.Fatalf("txn of 100 puts: %v", r)
	}
	var ks pb.RangeResponse
	if err := c.ctlJSON(all, &ks, "get", "k", "--prefix"); err != nil {
		t.Fatal(err)
	}
	if len(ks.Kvs) != 100 || ks.Count != 100 {
		t.Fatalf("get k --prefix: %d kvs, count %d, want 100", len(ks.Kvs), ks.Count)
	}
	for i, kv := range ks.Kvs {
		if want := fmt.Sprintf("k%02d", i); string(kv.Key) != want || string(kv.Value) != fmt.Sprintf("v%02d", i) {
			t.Fatalf("get k --prefix: kv %d = %s=%s, want %s (sorted by key)", i, kv.Key, kv.Value, want)
		}
		if kv.ModRevision != ks.Kvs[0].ModRevision || kv.ModRevision != rev2+1 {
			t.Fatalf("key %s has mod revision %d, want %d for every key of the txn", kv.Key, kv.ModRevision, rev2+1)
		}
	}

	if got := c.mustCtl(all, "get", "k", "--prefix", "--count-only", "-w", "fields"); !strings.Contains(got, `"Count" : 100`) {
		t.Errorf("get k --prefix --count-only -w fields: %q, want Count 100", got)
	}
	limited := c.mustCtl(all, "get", "k", "--prefix", "--limit", "5", "--keys-only")
	if got := strings.Fields(limited); strings.Join(got, " ") != "k00 k01 k02 k03 k04" {
		t.Errorf("get k --prefix --limit 5 --keys-only = %q, want k00..k04", limited)
	}
	fields := c.mustCtl(all, "get", "k", "--prefix", "--limit", "5", "-w", "fields")
	if !strings.Contains(fields, `"More" : true`) || !strings.Contains(fields, `"Count" : 100`) {
		t.Errorf("get k --prefix --limit 5 -w fields: want More true and Count 100 (count ignores limit), got:\n%s", fields)
	}

	if got := c.mustCtl(all, "del", "k9", "--prefix"); got != "10\n" {
		t.Errorf("del k9 --prefix printed %q, want 10", got)
	}
	if got := c.mustCtl(all, "del", "k00"); got != "1\n" {
		t.Errorf("del k00 printed %q, want 1", got)
	}
	if got := c.mustCtl(all, "del", "no-such-key"); got != "0\n" {
		t.Errorf("del no-such-key printed %q, want 0", got)
	}
	if got := c.mustCtl(all, "get", "k", "--prefix", "--count-only", "-w", "fields"); !strings.Contains(got, `"Count" : 89`) {
		t.Errorf("after deletes, count of prefix k: %q, want 89", got)
	}
	if got := c.mustCtl(all, "get", "k00", "--rev", fmt.Sprint(rev2+1), "--print-value-only"); got != "v00\n" {
		t.Errorf("get k00 at the txn's revision after its delete = %q, want v00", got)
	}
}

// checkEtcdctlTxn runs etcdctl txn from stdin through both branches.
func checkEtcdctlTxn(t *testing.T, c *cluster) {
	all := c.members
	const ops = "\nput txnkey yes\n\nput txnkey no\n\n"
	r := c.ctl(all, `value("mykey") = "Hello, etcd!"`+"\n"+ops, "txn")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "SUCCESS") {
		t.Fatalf("txn with a true compare: %v", r)
	}
	if got := c.mustCtl(all, "get", "txnkey", "--print-value-only"); got != "yes\n" {
		t.Fatalf("txn with a true compare wrote txnkey=%q, want yes", got)
	}
	r = c.ctl(all, `value("mykey") = "Hello, etcd!"`+"\n"+`version("txnkey") = "5"`+"\n"+ops, "txn")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "FAILURE") {
		t.Fatalf("txn with a false compare: %v", r)
	}
	if got := c.mustCtl(all, "get", "txnkey", "--print-value-only"); got != "no\n" {
		t.Fatalf("txn with a false compare wrote txnkey=%q, want no", got)
	}
}

// checkEtcdctlMembership checks member list, endpoint status and health.
func checkEtcdctlMembership(t *testing.T, c *cluster, ms []*member) {
	list := c.mustCtl(ms, "member", "list")
	for _, m := range ms {
		want := fmt.Sprintf(", started, %s, %s, %s, false", m.name, m.peerURL, m.clientURL)
		if !strings.Contains(list, want) {
			t.Errorf("member list lacks %q:\n%s", want, list)
		}
	}
	if n := strings.Count(list, "\n"); n != len(ms) {
		t.Errorf("member list has %d lines, want %d:\n%s", n, len(ms), list)
	}

	var statuses []endpointStatus
	if err := c.ctlJSON(ms, &statuses, "endpoint", "status"); err != nil {
		t.Fatal(err)
	}
	if len(statuses) != len(ms) {
		t.Fatalf("endpoint status answered for %d endpoints, want %d", len(statuses), len(ms))
	}
	leaders, selfLeaders := map[uint64]bool{}, 0
	ids, clusters := map[uint64]bool{}, map[uint64]bool{}
	for _, s := range statuses {
		leaders[s.Status.Leader] = true
		ids[s.Status.Header.MemberId] = true
		clusters[s.Status.Header.ClusterId] = true
		if s.Status.Leader == s.Status.Header.MemberId {
			selfLeaders++
		}
	}
	if len(leaders) != 1 || selfLeaders != 1 || len(ids) != len(ms) || len(clusters) != 1 || clusters[0] {
		t.Errorf("endpoint status: want one cluster id, one leader that is one of the members, distinct member ids; got %+v", statuses)
	}

	health := c.ctl(ms, "", "endpoint", "health")
	if health.code != 0 || strings.Count(health.stdout+health.stderr, "is healthy") != len(ms) {
		t.Errorf("endpoint health: %v", health)
	}
}

// memberAddedRE matches etcdctl's "Member %16x added as learner to cluster
// %16x" (the IDs are space-padded).
var memberAddedRE = regexp.MustCompile(`Member +([0-9a-f]+) added as learner to cluster +[0-9a-f]+`)

// addLearnerAndPromote adds a fourth member n3 as a learner, starts it with
// --initial-cluster-state existing, waits for it to catch up and promotes
// it; afterwards member list shows four started voters.
func addLearnerAndPromote(t *testing.T, c *cluster) *member {
	voters := c.members
	// The add goes through a follower, so it is forwarded to the leader, and
	// its answer must still list the new member: etcdctl prints
	// ETCD_INITIAL_CLUSTER from that list for the operator to copy.
	leader, _ := c.leaderCtl(voters, 10*time.Second)
	follower := c.others(leader)[0]
	n3 := c.addMember("n3")
	r := c.ctl([]*member{follower}, "", "member", "add", n3.name, "--learner", "--peer-urls="+n3.peerURL)
	match := memberAddedRE.FindStringSubmatch(r.stdout)
	if r.code != 0 || match == nil {
		t.Fatalf("member add --learner: %v", r)
	}
	id := match[1]
	wantEnv := []string{
		`ETCD_NAME="n3"`,
		`ETCD_INITIAL_ADVERTISE_PEER_URLS="` + n3.peerURL + `"`,
		`ETCD_INITIAL_CLUSTER_STATE="existing"`,
	}
	for _, w := range wantEnv {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("member add (through follower %s) did not print %s:\n%s", follower.name, w, r.stdout)
		}
	}
	for _, m := range c.members {
		if !strings.Contains(r.stdout, m.name+"="+m.peerURL) {
			t.Errorf("member add through follower %s: ETCD_INITIAL_CLUSTER lacks %s=%s, so the MemberAdd answer's member list lacks it "+
				"(etcd answers after the change is applied on the member that answers):\n%s",
				follower.name, m.name, m.peerURL, r.stdout)
		}
	}
	list := c.mustCtl(voters, "member", "list")
	if !strings.Contains(list, fmt.Sprintf("%s, unstarted, , %s, , true", id, n3.peerURL)) {
		t.Errorf("member list after add lacks unstarted learner %s:\n%s", id, list)
	}

	start := time.Now()
	if err := c.start(n3); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := c.waitReady(ctx, n3); err != nil {
		t.Fatal(err)
	}
	// Caught up: the learner's local revision reaches the cluster's.
	want := headerRevision(t, c, voters)
	for {
		st, err := c.statusCtl(n3)
		if err == nil && st.Header.Revision >= want {
			break
		}
		if time.Since(start) > convergeTimeout {
			t.Fatalf("learner n3 did not catch up to revision %d within %v: %v %v", want, convergeTimeout, st, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	caughtUp := time.Since(start)

	const notInSync = "can only promote a learner member which is in sync with leader"
	var tries int
	for {
		tries++
		r := c.ctl(voters, "", "member", "promote", id)
		if r.code == 0 {
			if !regexp.MustCompile(`Member +` + id + ` promoted in cluster`).MatchString(r.stdout) {
				t.Fatalf("member promote printed %q", r.stdout)
			}
			break
		}
		if !strings.Contains(r.stderr, notInSync) || time.Since(start) > convergeTimeout {
			t.Fatalf("member promote %s (try %d): %v", id, tries, r)
		}
		time.Sleep(100 * time.Millisecond) // poll interval: the learner is still catching up
	}
	t.Logf("learner n3 (%s) caught up in %v, promoted after %d tries, %v after start", id, caughtUp.Round(time.Millisecond), tries, time.Since(start).Round(time.Millisecond))

	list = c.mustCtl(c.members, "member", "list")
	if strings.Count(list, ", started, ") != 4 || strings.Count(list, ", true\n") != 0 || strings.Count(list, ", false\n") != 4 {
		t.Fatalf("member list after promote: want 4 started voters, got:\n%s", list)
	}
	return n3
}

// killLeaderAndKeepWriting SIGKILLs the leader, measures how long the
// others take to elect a new one, writes 50 keys through them and returns
// the killed member.
func killLeaderAndKeepWriting(t *testing.T, c *cluster) *member {
	old, oldID := c.leaderCtl(c.members, 10*time.Second)
	survivors := c.others(old)
	killedAt := time.Now()
	c.kill(old)
	_, newID := c.leaderCtl(survivors, failoverBound)
	elected := time.Since(killedAt)
	if newID == oldID {
		t.Fatalf("survivors still report the killed member %x as leader", oldID)
	}
	t.Logf("leader %s (%x) SIGKILLed; new leader %x elected in %v (two election timeouts = %v; bound %v)",
		old.name, oldID, newID, elected.Round(time.Millisecond), 2*c.timing.election, failoverBound)
	if elected > failoverBound {
		t.Errorf("new leader took %v, want under %v", elected, failoverBound)
	}

	var firstWrite time.Duration
	for i := range 50 {
		key := fmt.Sprintf("after%02d", i)
		var r ctlResult
		deadline := time.Now().Add(failoverBound)
		for {
			r = c.ctl(survivors, "", "put", key, "v")
			if r.code == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // poll interval while the cluster settles
		}
		if r.code != 0 {
			t.Fatalf("write %s through the survivors after the leader kill: %v", key, r)
		}
		if i == 0 {
			firstWrite = time.Since(killedAt)
		}
	}
	t.Logf("first write through the survivors succeeded %v after the kill; 50 writes in %v",
		firstWrite.Round(time.Millisecond), time.Since(killedAt).Round(time.Millisecond))
	if got := c.mustCtl(survivors, "get", "after", "--prefix", "--count-only", "-w", "fields"); !strings.Contains(got, `"Count" : 50`) {
		t.Errorf("count of prefix after: %q, want 50", got)
	}
	return old
}

// putRevision puts key=value through etcdctl and returns the revision of
// the write.
func putRevision(t *testing.T, c *cluster, key, value string) int64 {
	t.Helper()
	var resp pb.PutResponse
	if err := c.ctlJSON(c.members, &resp, "put", key, value); err != nil {
		t.Fatal(err)
	}
	if resp.Header == nil || resp.Header.Revision == 0 {
		t.Fatalf("put %s -w json: no revision in %+v", key, &resp)
	}
	return resp.Header.Revision
}

// headerRevision is the cluster's current revision, read linearizably
// through etcdctl.
func headerRevision(t *testing.T, c *cluster, ms []*member) int64 {
	t.Helper()
	var resp pb.RangeResponse
	if err := c.ctlJSON(ms, &resp, "get", "mykey"); err != nil {
		t.Fatal(err)
	}
	if resp.Header == nil || resp.Header.Revision == 0 {
		t.Fatalf("get -w json: no revision in %+v", &resp)
	}
	return resp.Header.Revision
}
