package lock_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concordkv/concord/lock"
	"github.com/concordkv/concord/session/sessiontest"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// BenchmarkMutex compares a Lock+Unlock cycle of lock.Mutex with etcd's
// concurrency.Mutex on the same cluster, uncontended and with 4 contenders
// (each cycle then includes a hand-off to the next waiter).
func BenchmarkMutex(b *testing.B) {
	cli := sessiontest.Client(b, cluster.Endpoints()...)
	s := sessiontest.NewSession(b, cli, 30*time.Second)
	es, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	type locker struct {
		lock, unlock func(context.Context) error
	}
	impls := []struct {
		name string
		new  func(name string) locker
	}{
		{"concord", func(name string) locker {
			m := lock.NewMutex(s, name)
			return locker{func(ctx context.Context) error { _, err := m.Lock(ctx); return err }, m.Unlock}
		}},
		{"etcd", func(name string) locker {
			// concurrency.Mutex shares one key per session and name: each
			// contender needs a session of its own.
			s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			m := concurrency.NewMutex(s, name)
			return locker{m.Lock, m.Unlock}
		}},
	}
	for _, impl := range impls {
		for _, contenders := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/contenders=%d", impl.name, contenders), func(b *testing.B) {
				name := fmt.Sprintf("lock/bench-%s-%d", impl.name, contenders)
				ctx := b.Context()
				var wg sync.WaitGroup
				stop := make(chan struct{})
				for range contenders - 1 {
					l := impl.new(name)
					wg.Go(func() {
						for {
							select {
							case <-stop:
								return
							default:
							}
							if l.lock(ctx) != nil || l.unlock(ctx) != nil {
								return
							}
						}
					})
				}
				l := impl.new(name)
				for b.Loop() {
					if err := l.lock(ctx); err != nil {
						b.Fatal(err)
					}
					if err := l.unlock(ctx); err != nil {
						b.Fatal(err)
					}
				}
				close(stop)
				wg.Wait()
			})
		}
	}
}
