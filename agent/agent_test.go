package agent

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestDevAgentServesKV(t *testing.T) {
	cfg, err := Parse([]string{"--dev", "--data-dir", t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peerAddr := peer.Addr().String()
	peer.Close()
	cfg.Network.ListenPeerURLs = []string{"http://" + peerAddr}
	cfg.Network.InitialAdvertisePeerURLs = []string{"http://" + peerAddr}
	cfg.Cluster.InitialCluster = cfg.Name + "=http://" + peerAddr
	a, err := Start(t.Context(), cfg, Options{ClientListeners: []net.Listener{ln}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	select {
	case <-a.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: a.ClientAddrs(), DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(t.Context(), "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get = %v, %v", resp, err)
	}
	t.Logf("header %+v", resp.Header)
}

func TestJSONGateway(t *testing.T) {
	cfg, err := Parse([]string{"--dev", "--data-dir", t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peerURL := "http://" + peer.Addr().String()
	peer.Close()
	cfg.Network.ListenPeerURLs = []string{peerURL}
	cfg.Network.InitialAdvertisePeerURLs = []string{peerURL}
	cfg.Cluster.InitialCluster = cfg.Name + "=" + peerURL
	a, err := Start(t.Context(), cfg, Options{ClientListeners: []net.Listener{ln}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	<-a.Ready()
	base := "http://" + a.ClientAddrs()[0]
	post := func(path, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", path, resp.StatusCode, out)
		}
		return out
	}
	// key "foo", value "bar", base64 as etcd's gateway wants them.
	post("/v3/kv/put", `{"key":"Zm9v","value":"YmFy"}`)
	got := post("/v3/kv/range", `{"key":"Zm9v"}`)
	kvs, _ := got["kvs"].([]any)
	if len(kvs) != 1 || kvs[0].(map[string]any)["value"] != "YmFy" {
		t.Fatalf("range through the gateway = %v", got)
	}
	if hdr, _ := got["header"].(map[string]any); hdr["revision"] == nil || hdr["cluster_id"] == nil {
		t.Fatalf("header lacks revision or cluster_id: %v", got)
	}
	resp, err := http.Get(base + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/health = %v, %v", resp, err)
	}
	resp.Body.Close()
}
