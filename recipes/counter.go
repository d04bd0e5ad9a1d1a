package recipes

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Counter is an int64 in one key, stored as canonical decimal text (so
// `etcdctl get` shows it), changed atomically by optimistic transactions.
// A missing key reads as 0.
type Counter struct {
	cli *clientv3.Client
	key string
}

// NewCounter returns the counter whose key is name itself.
func NewCounter(cli *clientv3.Client, name string) *Counter {
	return &Counter{cli: cli, key: name}
}

// Get returns the counter's value.
func (c *Counter) Get(ctx context.Context) (int64, error) {
	resp, err := c.cli.Get(ctx, c.key)
	if err != nil {
		return 0, fmt.Errorf("counter %s: get: %w", c.key, err)
	}
	v, _, err := c.parse(resp.Kvs)
	return v, err
}

func (c *Counter) parse(kvs []*mvccpb.KeyValue) (value, modRev int64, err error) {
	if len(kvs) == 0 {
		return 0, 0, nil
	}
	v, err := strconv.ParseInt(string(kvs[0].Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("counter %s: value %q: %w", c.key, kvs[0].Value, err)
	}
	return v, kvs[0].ModRevision, nil
}

// Add adds delta and returns the new value. It retries while others change
// the counter between its read and its write. If a request fails, Add
// returns the error without retrying: the addition may or may not have
// been applied (the answer was lost), and only the caller knows whether
// adding twice is worse than not at all.
func (c *Counter) Add(ctx context.Context, delta int64) (int64, error) {
	if c.key == "" {
		return 0, fmt.Errorf("counter: %w: empty name", ErrInvalid)
	}
	resp, err := c.cli.Get(ctx, c.key)
	if err != nil {
		return 0, fmt.Errorf("counter %s: add: %w", c.key, err)
	}
	kvs := resp.Kvs
	for {
		v, mod, err := c.parse(kvs)
		if err != nil {
			return 0, err
		}
		next := v + delta
		tresp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(c.key), "=", mod)).
			Then(clientv3.OpPut(c.key, strconv.FormatInt(next, 10))).
			Else(clientv3.OpGet(c.key)).Commit()
		if err != nil {
			return 0, fmt.Errorf("counter %s: add: %w", c.key, err)
		}
		if tresp.Succeeded {
			return next, nil
		}
		kvs = tresp.Responses[0].GetResponseRange().Kvs
	}
}

// CompareAndSet sets the counter to value if it is old, and reports
// whether it did.
func (c *Counter) CompareAndSet(ctx context.Context, old, value int64) (bool, error) {
	if c.key == "" {
		return false, fmt.Errorf("counter: %w: empty name", ErrInvalid)
	}
	put := clientv3.OpPut(c.key, strconv.FormatInt(value, 10))
	resp, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(c.key), "=", strconv.FormatInt(old, 10))).
		Then(put).Else(clientv3.OpGet(c.key, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return false, fmt.Errorf("counter %s: compare and set: %w", c.key, err)
	}
	if resp.Succeeded || old != 0 || resp.Responses[0].GetResponseRange().Count != 0 {
		return resp.Succeeded, nil
	}
	// A missing key is 0.
	resp, err = c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(c.key), "=", 0)).Then(put).Commit()
	if err != nil {
		return false, fmt.Errorf("counter %s: compare and set: %w", c.key, err)
	}
	return resp.Succeeded, nil
}
