package agent

import (
	"context"
	"net"
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
