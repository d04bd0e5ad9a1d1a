package etcdapi_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/concordkv/concord/agent/agenttest"
)

// BenchmarkWatchFanout measures event fan-out latency through gRPC: one
// put on a single member, until every one of n clientv3 watchers of the
// put's prefix has received the event (ns/op; p50-ms and p99-ms are the
// same per put). Watchers are spread over four clients with up to five
// streams each, as an application fleet would open them.
func BenchmarkWatchFanout(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			c := agenttest.Start(b, 1, agenttest.Options{})
			remaining := openCountingWatchers(b, c, "bench/", n)
			writer := c.Client()
			var lat []time.Duration
			i := 0
			for b.Loop() {
				remaining.left.Store(int64(n))
				began := time.Now()
				if _, err := writer.Put(context.Background(), fmt.Sprintf("bench/%d", i%64), "value"); err != nil {
					b.Fatal(err)
				}
				select {
				case <-remaining.done:
				case <-time.After(watchWait):
					b.Fatalf("put %d: %d of %d watchers still waiting", i, remaining.left.Load(), n)
				}
				lat = append(lat, time.Since(began))
				i++
			}
			reportLatency(b, lat)
		})
	}
}

// countdown is signalled when left reaches zero.
type countdown struct {
	left atomic.Int64
	done chan struct{}
}

// openCountingWatchers opens n watchers of prefix; each event a watcher
// receives counts down once.
func openCountingWatchers(b *testing.B, c *agenttest.Cluster, prefix string, n int) *countdown {
	b.Helper()
	cd := &countdown{done: make(chan struct{}, 1)}
	const clients = 4
	streams := min(5, (n+clients-1)/clients)
	var wg sync.WaitGroup
	var opened atomic.Int64
	for ci := range clients {
		cli := c.Client()
		for si := range streams {
			ctx := metadata.AppendToOutgoingContext(b.Context(), "stream", fmt.Sprint(si))
			slot := ci*streams + si
			wg.Go(func() {
				for j := slot; j < n; j += clients * streams {
					wch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
					if r, err := firstResponse(wch); err != nil || !r.Created {
						b.Errorf("watch: %+v %v", r, err)
						return
					}
					opened.Add(1)
					go func() {
						for r := range wch {
							for range r.Events {
								if cd.left.Add(-1) == 0 {
									cd.done <- struct{}{}
								}
							}
						}
					}()
				}
			})
		}
	}
	wg.Wait()
	if int(opened.Load()) != n {
		b.Fatalf("opened %d of %d watchers", opened.Load(), n)
	}
	return cd
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
}

// BenchmarkPutWithStalledWatcher measures put latency (1 KiB values, one
// writer) with and without a watcher of the same keys that never reads its
// stream. Run it with -benchtime=10000x: the stalled watcher falls behind
// after about 1,150 events and from then on costs the writes nothing.
func BenchmarkPutWithStalledWatcher(b *testing.B) {
	for _, stalled := range []bool{false, true} {
		b.Run(fmt.Sprintf("stalled=%v", stalled), func(b *testing.B) {
			c := agenttest.Start(b, 1, agenttest.Options{})
			srv := c.Members[0].Agent.Server()
			cli := c.Client()
			if stalled {
				stalledWatch(b, c.Client(), srv, "stall/", 0)
			}
			val := strings.Repeat("x", 1024)
			var lat []time.Duration
			i := 0
			for b.Loop() {
				began := time.Now()
				if _, err := cli.Put(context.Background(), fmt.Sprintf("stall/%05d", i), val); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(began))
				i++
			}
			reportLatency(b, lat)
			if stalled {
				st := srv.WatchStats()
				b.ReportMetric(float64(st.BufferedEvents), "buffered-events")
			}
		})
	}
}
