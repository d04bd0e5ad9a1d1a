// Command lock shows lock.Mutex at work: it increments a counter in the KV
// several times, each read-modify-write under a distributed lock and fenced
// on still holding it. Run several copies at once: the counter ends exact
// and the fencing tokens they print only increase. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "lock:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("lock", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	name := fs.String("name", "/examples/lock", "lock name: its keys live under NAME/")
	counter := fs.String("counter", "/examples/lock-counter", "key of the counter to increment")
	rounds := fs.Int("n", 5, "increments to make")
	hold := fs.Duration("hold", 200*time.Millisecond, "how long to hold the lock each time")
	ttl := fs.Duration("ttl", 10*time.Second, "session TTL: how long a crashed holder blocks the others")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer cli.Close()
	s, err := session.New(ctx, cli, session.WithTTL(*ttl))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	defer s.Close(context.Background())
	host, _ := os.Hostname()
	m := lock.NewMutex(s, *name, lock.WithValue(fmt.Sprintf("%s pid %d", host, os.Getpid())))

	for range *rounds {
		token, err := m.Lock(ctx)
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		v, err := increment(ctx, cli, m, *counter)
		if err != nil {
			m.Unlock(context.Background())
			return err
		}
		fmt.Fprintf(out, "token %d: %s = %d (key %s)\n", token, *counter, v, m.Key())
		select {
		case <-time.After(*hold): // pretend to work
		case <-m.Done():
			return fmt.Errorf("lost the lock while working: %w", m.Err())
		case <-ctx.Done():
		}
		if err := m.Unlock(context.Background()); err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// increment adds one to the counter, fenced on the lock: if the lock was
// lost meanwhile, the write is refused instead of racing the new holder.
func increment(ctx context.Context, cli *clientv3.Client, m *lock.Mutex, key string) (int64, error) {
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	var v int64
	if len(resp.Kvs) > 0 {
		if v, err = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64); err != nil {
			return 0, fmt.Errorf("read %s: %w", key, err)
		}
	}
	txn, err := cli.Txn(ctx).If(m.IsOwner()).Then(clientv3.OpPut(key, strconv.FormatInt(v+1, 10))).Commit()
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	if !txn.Succeeded {
		return 0, errors.New("write refused: the lock was lost")
	}
	return v + 1, nil
}
