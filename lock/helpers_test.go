package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/concordkv/concord/lock"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// within waits for done to close within limit and returns how long it took.
func within(t testing.TB, what string, done <-chan struct{}, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(limit):
		t.Fatalf("%s: not within %v", what, limit)
		return 0
	}
}

// keyCount returns how many keys there are under prefix.
func keyCount(t testing.TB, cli *clientv3.Client, prefix string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}

// waitKeys waits until there are n keys under prefix: how a test knows a
// participant has queued.
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

var errFenced = errors.New("fenced write refused")

// increment adds one to the counter at key, a read-modify-write fenced on
// the hold (owner) and on the counter's own revision. A write whose answer
// was lost is settled by reading again: only the holder can have changed
// the counter, so a changed counter means the write was applied.
func increment(ctx context.Context, cli *clientv3.Client, owner clientv3.Cmp, key string) (int64, error) {
	read := func() (int64, int64, error) {
		resp, err := cli.Txn(ctx).If(owner).Then(clientv3.OpGet(key)).Commit()
		if err != nil {
			return 0, 0, err
		}
		if !resp.Succeeded {
			return 0, 0, errFenced
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return 0, 0, nil
		}
		v, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
		return v, kvs[0].ModRevision, err
	}
	v, mod, err := read()
	if err != nil {
		return 0, err
	}
	next := v + 1
	resp, err := cli.Txn(ctx).
		If(owner, clientv3.Compare(clientv3.ModRevision(key), "=", mod)).
		Then(clientv3.OpPut(key, strconv.FormatInt(next, 10))).Commit()
	if err != nil {
		for range 20 {
			after, afterMod, rerr := read()
			if rerr == nil {
				if afterMod == mod {
					return 0, fmt.Errorf("write not applied: %w", err)
				}
				if after != next {
					return 0, fmt.Errorf("counter %d after our write of %d: someone else wrote", after, next)
				}
				return next, nil
			}
			if errors.Is(rerr, errFenced) {
				return 0, rerr
			}
			time.Sleep(100 * time.Millisecond)
		}
		return 0, err
	}
	if !resp.Succeeded {
		return 0, errFenced
	}
	return next, nil
}

func counterValue(t testing.TB, cli *clientv3.Client, key string) int64 {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	v, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// strictlyIncreasing reports the first place tokens do not increase.
func strictlyIncreasing(tokens []lock.Token) error {
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			return fmt.Errorf("token %d at %d after %d", tokens[i], i, tokens[i-1])
		}
	}
	return nil
}
