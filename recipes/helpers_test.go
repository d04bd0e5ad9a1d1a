package recipes_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func keyCount(t testing.TB, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// waitKeys waits until there are n keys under prefix.
func waitKeys(t testing.TB, cli *clientv3.Client, prefix string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for keyCount(t, cli, prefix) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d keys, want %d", prefix, keyCount(t, cli, prefix), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
