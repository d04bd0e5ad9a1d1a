package recipes

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// claimBatch is how many items a Dequeue reads at once, to try the next
// ones without another read when others claim the first.
const claimBatch = 16

// Queue is a FIFO queue of string values: items are keys under NAME/
// taken in the order they were created. Items have no lease: they outlive
// their producers.
type Queue struct {
	cli    *clientv3.Client
	name   string
	prefix string
}

// NewQueue returns the queue name. Items are NAME/<random-hex>.
func NewQueue(cli *clientv3.Client, name string) *Queue {
	return &Queue{cli: cli, name: name, prefix: name + "/"}
}

// Enqueue appends value.
func (q *Queue) Enqueue(ctx context.Context, value string) error {
	if q.name == "" {
		return fmt.Errorf("queue: %w: empty name", ErrInvalid)
	}
	if err := putNew(ctx, q.cli, itemKey(q.prefix), value); err != nil {
		return fmt.Errorf("queue %s: enqueue: %w", q.name, err)
	}
	return nil
}

// Dequeue removes and returns the oldest item, waiting for one if the
// queue is empty. Concurrent Dequeues each get a different item, and
// items leave in the order they arrived.
func (q *Queue) Dequeue(ctx context.Context) (string, error) {
	v, err := dequeue(ctx, q.cli, func(ctx context.Context) (*clientv3.GetResponse, error) {
		return q.cli.Get(ctx, q.prefix, clientv3.WithPrefix(),
			clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(claimBatch))
	}, q.prefix)
	if err != nil {
		return "", fmt.Errorf("queue %s: dequeue: %w", q.name, err)
	}
	return v, nil
}

// Len returns the number of items.
func (q *Queue) Len(ctx context.Context) (int64, error) {
	return count(ctx, q.cli, q.prefix)
}

// PriorityQueue is a queue whose items leave lowest priority number first
// and, within one priority, in arrival order.
type PriorityQueue struct {
	cli    *clientv3.Client
	name   string
	prefix string
}

// NewPriorityQueue returns the priority queue name. Items are
// NAME/<priority, 5 digits>/<random-hex>.
func NewPriorityQueue(cli *clientv3.Client, name string) *PriorityQueue {
	return &PriorityQueue{cli: cli, name: name, prefix: name + "/"}
}

// Enqueue adds value with priority; 0 leaves first.
func (q *PriorityQueue) Enqueue(ctx context.Context, value string, priority uint16) error {
	if q.name == "" {
		return fmt.Errorf("priority queue: %w: empty name", ErrInvalid)
	}
	if err := putNew(ctx, q.cli, itemKey(q.bucket(priority)), value); err != nil {
		return fmt.Errorf("priority queue %s: enqueue: %w", q.name, err)
	}
	return nil
}

func (q *PriorityQueue) bucket(priority uint16) string {
	return fmt.Sprintf("%s%05d/", q.prefix, priority)
}

// Dequeue removes and returns the oldest item of the lowest priority
// number, waiting for one if the queue is empty. An item enqueued with a
// lower number while a Dequeue already claims another can lose that race:
// the Dequeue is ordered at its read.
func (q *PriorityQueue) Dequeue(ctx context.Context) (string, error) {
	v, err := dequeue(ctx, q.cli, func(ctx context.Context) (*clientv3.GetResponse, error) {
		for {
			first, err := q.cli.Get(ctx, q.prefix, append(clientv3.WithFirstKey(), clientv3.WithKeysOnly())...)
			if err != nil || len(first.Kvs) == 0 {
				return first, err
			}
			key := string(first.Kvs[0].Key)
			if len(key) < len(q.prefix)+6 {
				return nil, fmt.Errorf("%s is not a priority queue item", key)
			}
			bucket := key[:len(q.prefix)+6] // NAME/ddddd/
			items, err := q.cli.Get(ctx, bucket, clientv3.WithPrefix(),
				clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(claimBatch))
			if err != nil || len(items.Kvs) > 0 {
				return items, err
			}
			// The bucket emptied between the reads: look again.
		}
	}, q.prefix)
	if err != nil {
		return "", fmt.Errorf("priority queue %s: dequeue: %w", q.name, err)
	}
	return v, nil
}

// Len returns the number of items.
func (q *PriorityQueue) Len(ctx context.Context) (int64, error) {
	return count(ctx, q.cli, q.prefix)
}

// putNew creates key with value; the key is random, so it is new, but the
// comparison keeps a (vanishingly unlikely) collision from replacing an
// item.
func putNew(ctx context.Context, cli *clientv3.Client, key, value string) error {
	resp, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, value)).Commit()
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("key %s exists", key)
	}
	return nil
}

// dequeue claims the first item that read returns by deleting it, fenced
// on its revision so that exactly one Dequeue gets it, trying the next
// items of the batch when another Dequeue was faster. Claiming in read
// order keeps the order: an item is claimed only after every older one was.
// With nothing to read it waits for a put under prefix.
func dequeue(ctx context.Context, cli *clientv3.Client, read func(context.Context) (*clientv3.GetResponse, error), prefix string) (string, error) {
	for {
		resp, err := retryRead(ctx, nil, func() (*clientv3.GetResponse, error) { return read(ctx) })
		if err != nil {
			return "", err
		}
		for _, kv := range resp.Kvs {
			claim, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
				Then(clientv3.OpDelete(string(kv.Key))).Commit()
			if err != nil {
				return "", fmt.Errorf("claim %s: %w", kv.Key, err)
			}
			if claim.Succeeded {
				return string(kv.Value), nil
			}
		}
		if len(resp.Kvs) > 0 {
			continue // all taken by others: read again
		}
		if _, err := waitEvent(ctx, cli, prefix, true, resp.Header.Revision, nil, isPut); err != nil {
			return "", err
		}
	}
}

func count(ctx context.Context, cli *clientv3.Client, prefix string) (int64, error) {
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", prefix, err)
	}
	return resp.Count, nil
}
