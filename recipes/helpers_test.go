package recipes_test

import (
	"context"
	"testing"
	"time"

	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// minTTL is the smallest TTL etcd grants with its default election
// timeout (1s).
const minTTL = 2 * time.Second

func newSession(t testing.TB, cli *clientv3.Client, ttl time.Duration) *session.Session {
	t.Helper()
	s, err := session.New(context.Background(), cli, session.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

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

// fresh deletes every key under prefix, so that a test starts clean on the
// shared cluster even when run again (-count).
func fresh(t testing.TB, cli *clientv3.Client, prefix string) {
	t.Helper()
	if _, err := cli.Delete(context.Background(), prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
}
