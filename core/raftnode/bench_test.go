package raftnode

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPropose measures Propose throughput on a three-member loopback
// cluster with etcd's default timings, 300-byte payloads and callers
// spread over all members (followers forward to the leader), for each log
// store. Report: proposals/s.
//
//	go test -run '^$' -bench BenchmarkPropose -benchtime 5s ./core/raftnode/
func BenchmarkPropose(b *testing.B) {
	for _, kind := range []LogStoreKind{LogStoreWAL, LogStoreBolt} {
		for _, callers := range []int{1, 100} {
			b.Run(fmt.Sprintf("store=%s/callers=%d", kind, callers), func(b *testing.B) {
				benchPropose(b, kind, callers)
			})
		}
	}
}

func benchPropose(b *testing.B, kind LogStoreKind, callers int) {
	c := newTestCluster(b, 3, clusterOptions{
		logStore:  kind,
		heartbeat: 100 * time.Millisecond,
		election:  time.Second,
	})
	payload := make([]byte, 300)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	ctx := context.Background()
	// Warm up connections and the leader's read of its own log.
	for _, m := range c.members {
		if _, err := m.node.Propose(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range callers {
		m := c.members[i%len(c.members)]
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := m.node.Propose(ctx, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "proposals/s")
}

// BenchmarkReadBarrier measures linearizable read barriers per second on a
// three-member cluster (raft-wal), callers spread over all members, with no
// concurrent writes. Report: reads/s.
func BenchmarkReadBarrier(b *testing.B) {
	for _, callers := range []int{1, 100} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			c := newTestCluster(b, 3, clusterOptions{heartbeat: 100 * time.Millisecond, election: time.Second})
			ctx := context.Background()
			for _, m := range c.members {
				if err := m.node.ReadBarrier(ctx); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for i := range callers {
				m := c.members[i%len(c.members)]
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := m.node.ReadBarrier(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
		})
	}
}
