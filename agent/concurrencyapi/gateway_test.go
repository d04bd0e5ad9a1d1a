package concurrencyapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/concordkv/concord/agent/agenttest"
)

// TestGateway: the JSON gateway routes of the two services, as etcd's
// gateway serves them (POST, keys base64, int64 as strings).
func TestGateway(t *testing.T) {
	c := agenttest.Start(t, 1, agenttest.Options{})
	cli := c.Client()
	base := "http://" + c.Members[0].ClientAddr
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	lease := grant(t, cli, 60)

	var locked struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
		Key []byte `json:"key"` // base64 in JSON
	}
	postJSON(t, base+"/v3/lock/lock", fmt.Sprintf(`{"name":%q,"lease":"%d"}`, b64("gw-lock"), lease), &locked)
	if want := fmt.Sprintf("gw-lock/%x", lease); string(locked.Key) != want {
		t.Fatalf("/v3/lock/lock key %q, want %q", locked.Key, want)
	}
	resp, err := cli.Get(t.Context(), string(locked.Key))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != lease {
		t.Fatalf("lock key after /v3/lock/lock: %v %v", resp, err)
	}
	if rev, _ := strconv.ParseInt(locked.Header.Revision, 10, 64); rev < resp.Kvs[0].CreateRevision {
		t.Errorf("header revision %q below the key's create revision %d", locked.Header.Revision, resp.Kvs[0].CreateRevision)
	}

	// A second lease waits on the gateway as on gRPC.
	other := grant(t, cli, 60)
	waiting := async(t, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v3/lock/lock",
			bytes.NewReader(fmt.Appendf(nil, `{"name":%q,"lease":"%d"}`, b64("gw-lock"), other)))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return fmt.Errorf("answered %s while the lock was held", resp.Status)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("failed otherwise than by waiting: %w", err)
		}
		return nil
	})
	if err := recv(t, "second /v3/lock/lock", waiting, 10*time.Second); err != nil {
		t.Fatal(err)
	}

	postJSON(t, base+"/v3/lock/unlock", fmt.Sprintf(`{"key":%q}`, base64.StdEncoding.EncodeToString(locked.Key)), nil)
	if createRev(t, cli, string(locked.Key)) != 0 {
		t.Error("lock key still there after /v3/lock/unlock")
	}

	var campaign struct {
		Leader struct {
			Name  []byte `json:"name"`
			Key   []byte `json:"key"`
			Rev   string `json:"rev"`
			Lease string `json:"lease"`
		} `json:"leader"`
	}
	postJSON(t, base+"/v3/election/campaign", fmt.Sprintf(`{"name":%q,"lease":"%d","value":%q}`, b64("gw-elect"), lease, b64("v1")), &campaign)
	l := campaign.Leader
	if string(l.Name) != "gw-elect" || string(l.Key) != fmt.Sprintf("gw-elect/%x", lease) || l.Lease != strconv.FormatInt(lease, 10) || l.Rev != strconv.FormatInt(createRev(t, cli, string(l.Key)), 10) {
		t.Fatalf("/v3/election/campaign leader %+v", l)
	}
	leaderKey, err := json.Marshal(map[string]any{"name": l.Name, "key": l.Key, "rev": l.Rev, "lease": l.Lease})
	if err != nil {
		t.Fatal(err)
	}
	postJSON(t, base+"/v3/election/proclaim", fmt.Sprintf(`{"leader":%s,"value":%q}`, leaderKey, b64("v2")), nil)

	var leader struct {
		KV struct {
			Key   []byte `json:"key"`
			Value []byte `json:"value"`
		} `json:"kv"`
	}
	postJSON(t, base+"/v3/election/leader", fmt.Sprintf(`{"name":%q}`, b64("gw-elect")), &leader)
	if string(leader.KV.Key) != string(l.Key) || string(leader.KV.Value) != "v2" {
		t.Errorf("/v3/election/leader kv %s=%s, want %s=v2", leader.KV.Key, leader.KV.Value, l.Key)
	}

	// Observe streams one JSON object per line, {"result": LeaderResponse}.
	octx, ocancel := context.WithCancel(t.Context())
	defer ocancel()
	req, _ := http.NewRequestWithContext(octx, http.MethodPost, base+"/v3/election/observe",
		bytes.NewReader(fmt.Appendf(nil, `{"name":%q}`, b64("gw-elect"))))
	oresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer oresp.Body.Close()
	var observed struct {
		Result struct {
			KV struct {
				Value []byte `json:"value"`
			} `json:"kv"`
		} `json:"result"`
	}
	line, err := bufio.NewReader(oresp.Body).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &observed) != nil || string(observed.Result.KV.Value) != "v2" {
		t.Fatalf("/v3/election/observe first line %q (%v), want the leader's value v2", line, err)
	}
	ocancel()

	postJSON(t, base+"/v3/election/resign", fmt.Sprintf(`{"leader":%s}`, leaderKey), nil)
	if createRev(t, cli, string(l.Key)) != 0 {
		t.Error("leader key still there after /v3/election/resign")
	}
}

// postJSON posts body to url, requires 200 OK and decodes the answer into
// out (unless nil).
func postJSON(t *testing.T, url, body string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %s %s", url, body, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("POST %s: decode %s: %v", url, data, err)
		}
	}
}
