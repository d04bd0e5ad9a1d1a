package concurrencyapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/concordkv/concord/agent/agenttest"
)

// TestElection drives the Election service with its generated gRPC client
// on a three-member cluster: campaign, proclaim, leader, observe, resign.
func TestElection(t *testing.T) {
	c := agenttest.Start(t, 3, agenttest.Options{})
	members := memberStubs(t, c)
	cli := c.Client()
	name := []byte("elect")

	_, err := members[0].election.Leader(t.Context(), &epb.LeaderRequest{Name: name})
	wantStatus(t, "Leader without candidates", err, "election: no leader")

	// Observe before anyone campaigns: the stream waits for the first leader.
	octx, ocancel := context.WithCancel(t.Context())
	defer ocancel()
	obs, err := members[2].election.Observe(octx, &epb.LeaderRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	observed := make(chan *epb.LeaderResponse, 16)
	go func() {
		defer close(observed)
		for {
			resp, err := obs.Recv()
			if err != nil {
				return
			}
			observed <- resp
		}
	}()
	wantObserved := func(key, value string) *epb.LeaderResponse {
		t.Helper()
		resp := recv(t, "observed "+value, observed, 10*time.Second)
		if resp == nil {
			t.Fatalf("Observe stream ended before %s", value)
		}
		if string(resp.Kv.Key) != key || string(resp.Kv.Value) != value {
			t.Fatalf("observed %s=%s, want %s=%s", resp.Kv.Key, resp.Kv.Value, key, value)
		}
		return resp
	}

	la, lb := grant(t, cli, 60), grant(t, cli, 60)
	a, err := members[0].election.Campaign(t.Context(), &epb.CampaignRequest{Name: name, Lease: la, Value: []byte("a1")})
	if err != nil {
		t.Fatal(err)
	}
	keyA := fmt.Sprintf("elect/%x", la)
	if l := a.Leader; string(l.Name) != "elect" || string(l.Key) != keyA || l.Lease != la || l.Rev != createRev(t, cli, keyA) {
		t.Fatalf("LeaderKey %+v, want name elect, key %s, lease %x, rev %d", l, keyA, la, createRev(t, cli, keyA))
	}
	if a.Header.Revision < a.Leader.Rev {
		t.Errorf("header revision %d below the leader's rev %d", a.Header.Revision, a.Leader.Rev)
	}
	first := wantObserved(keyA, "a1")
	if first.Kv.CreateRevision != a.Leader.Rev || first.Kv.Lease != la {
		t.Errorf("observed kv %+v, want create revision %d and lease %x", first.Kv, a.Leader.Rev, la)
	}

	type campaignResult struct {
		resp *epb.CampaignResponse
		err  error
	}
	bch := async(t, func() campaignResult {
		resp, err := members[1].election.Campaign(t.Context(), &epb.CampaignRequest{Name: name, Lease: lb, Value: []byte("b1")})
		return campaignResult{resp, err}
	})
	notYet(t, "a second candidate's Campaign", bch, 300*time.Millisecond)

	if _, err := members[1].election.Proclaim(t.Context(), &epb.ProclaimRequest{Leader: a.Leader, Value: []byte("a2")}); err != nil {
		t.Fatal(err)
	}
	wantObserved(keyA, "a2")
	lead, err := members[2].election.Leader(t.Context(), &epb.LeaderRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if string(lead.Kv.Key) != keyA || string(lead.Kv.Value) != "a2" || lead.Kv.CreateRevision != a.Leader.Rev || lead.Kv.ModRevision <= a.Leader.Rev || lead.Kv.Version != 2 {
		t.Errorf("Leader kv %+v, want %s=a2 created at %d, modified after, version 2", lead.Kv, keyA, a.Leader.Rev)
	}

	stale := &epb.LeaderKey{Name: name, Key: a.Leader.Key, Rev: a.Leader.Rev - 1, Lease: la}
	_, err = members[0].election.Proclaim(t.Context(), &epb.ProclaimRequest{Leader: stale, Value: []byte("x")})
	wantStatus(t, "Proclaim with a stale LeaderKey", err, "election: not leader")
	_, err = members[0].election.Proclaim(t.Context(), &epb.ProclaimRequest{Value: []byte("x")})
	wantStatus(t, "Proclaim without a LeaderKey", err, `"leader" field must be provided`)
	_, err = members[0].election.Resign(t.Context(), &epb.ResignRequest{})
	wantStatus(t, "Resign without a LeaderKey", err, `"leader" field must be provided`)

	if _, err := members[0].election.Resign(t.Context(), &epb.ResignRequest{Leader: a.Leader}); err != nil {
		t.Fatal(err)
	}
	b := recv(t, "Campaign after the leader resigned", bch, 10*time.Second)
	if b.err != nil {
		t.Fatal(b.err)
	}
	keyB := fmt.Sprintf("elect/%x", lb)
	if string(b.resp.Leader.Key) != keyB || b.resp.Leader.Rev <= a.Leader.Rev {
		t.Errorf("new LeaderKey %+v, want key %s and a rev above %d", b.resp.Leader, keyB, a.Leader.Rev)
	}
	wantObserved(keyB, "b1")
	// Resigning a leadership that ended is not an error, as with etcd.
	if _, err := members[0].election.Resign(t.Context(), &epb.ResignRequest{Leader: a.Leader}); err != nil {
		t.Errorf("second Resign: %v", err)
	}

	// The leader's lease revoked: the next candidate leads, observers see it.
	lc := grant(t, cli, 60)
	cch := async(t, func() campaignResult {
		resp, err := members[0].election.Campaign(t.Context(), &epb.CampaignRequest{Name: name, Lease: lc, Value: []byte("c1")})
		return campaignResult{resp, err}
	})
	waitFor(t, 5*time.Second, "the third candidate's key", func() bool { return createRev(t, cli, fmt.Sprintf("elect/%x", lc)) != 0 })
	if _, err := cli.Revoke(t.Context(), clientv3.LeaseID(lb)); err != nil {
		t.Fatal(err)
	}
	if r := recv(t, "Campaign after the leader's lease was revoked", cch, 10*time.Second); r.err != nil {
		t.Fatal(r.err)
	}
	wantObserved(fmt.Sprintf("elect/%x", lc), "c1")

	ocancel()
	for resp := range observed {
		t.Errorf("observed more than every change: %s=%s", resp.Kv.Key, resp.Kv.Value)
	}
	c.CheckConverged()
}

// TestStopEndsWaitingCalls: a member that stops ends its waiting Lock and
// Campaign calls and Observe streams with Unavailable, promptly, instead
// of waiting for them.
func TestStopEndsWaitingCalls(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	m := dialStubs(t, c.Members[0].ClientAddr)
	cli := c.Client()
	la, lb := grant(t, cli, 60), grant(t, cli, 60)
	if _, err := m.election.Campaign(t.Context(), &epb.CampaignRequest{Name: []byte("stop-e"), Lease: la, Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	campaign := async(t, func() error {
		_, err := m.election.Campaign(t.Context(), &epb.CampaignRequest{Name: []byte("stop-e"), Lease: lb, Value: []byte("b")})
		return err
	})
	obs, err := m.election.Observe(t.Context(), &epb.LeaderRequest{Name: []byte("stop-e")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Recv(); err != nil {
		t.Fatal(err)
	}
	observe := async(t, func() error {
		_, err := obs.Recv()
		return err
	})
	notYet(t, "the waiting Campaign", campaign, 200*time.Millisecond)

	start := time.Now()
	c.Stop(0)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping the member took %v with calls waiting", took)
	}
	for what, ch := range map[string]<-chan error{"waiting Campaign": campaign, "Observe stream": observe} {
		err := recv(t, what, ch, 5*time.Second)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s ended with %v, want Unavailable", what, err)
		}
	}
}
