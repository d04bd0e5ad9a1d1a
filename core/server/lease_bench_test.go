package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordkv/concord/agent/agenttest"
)

// benchClusters runs fn on a one-member cluster and, through a follower,
// on a three-member one.
func benchClusters(b *testing.B, fn func(b *testing.B, c *agenttest.Cluster, cli *clientv3.Client)) {
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("members=%d", size), func(b *testing.B) {
			c := agenttest.Start(b, size, agenttest.Options{})
			member := 0
			if size > 1 {
				member = c.Follower()
			}
			fn(b, c, c.Client(member))
		})
	}
}

// BenchmarkLeaseGrant measures grants per second from 32 concurrent
// clients' goroutines (each grant is one Raft proposal).
func BenchmarkLeaseGrant(b *testing.B) {
	benchClusters(b, func(b *testing.B, _ *agenttest.Cluster, cli *clientv3.Client) {
		b.SetParallelism(16) // 16 goroutines per GOMAXPROCS
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cli.Grant(context.Background(), 60); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "grants/s")
	})
}

// BenchmarkLeaseKeepAlive measures renewals per second: "stream" keeps one
// keepalive stream per goroutine (as clientv3's KeepAlive does), "once"
// opens one per renewal (as etcd's `benchmark lease-keepalive`, via
// KeepAliveOnce). Through a follower every renewal is forwarded to the
// leader.
func BenchmarkLeaseKeepAlive(b *testing.B) {
	benchClusters(b, func(b *testing.B, _ *agenttest.Cluster, cli *clientv3.Client) {
		const workers = 32
		ids := make([]clientv3.LeaseID, workers)
		for i := range ids {
			g, err := cli.Grant(b.Context(), 600)
			if err != nil {
				b.Fatal(err)
			}
			ids[i] = g.ID
		}
		b.Run("stream", func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(workers / 2)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(p *testing.PB) {
				id := ids[next.Add(1)%workers]
				stream, err := pb.NewLeaseClient(cli.ActiveConnection()).LeaseKeepAlive(b.Context())
				if err != nil {
					b.Error(err)
					return
				}
				defer stream.CloseSend()
				for p.Next() {
					if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(id)}); err != nil {
						b.Error(err)
						return
					}
					resp, err := stream.Recv()
					if err != nil || resp.TTL != 600 {
						b.Errorf("keepalive answer %v, %v", resp, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "renewals/s")
		})
		b.Run("once", func(b *testing.B) {
			var next atomic.Int64
			b.SetParallelism(workers / 2)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(p *testing.PB) {
				id := ids[next.Add(1)%workers]
				for p.Next() {
					if _, err := cli.KeepAliveOnce(context.Background(), id); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "renewals/s")
		})
	})
}

// BenchmarkLeaseMassExpiryPutLatency grants 10,000 leases with a key each
// on a three-member cluster, then moves leadership so that the new leader
// gives them all the same deadline, and measures the latency of sequential
// puts (through a follower) before and while they all expire: at the
// default revoke rate (1000/s) the expiry takes ten seconds and must not
// stall writes. The election timeout is 2 s so that the 9 s TTL is below
// the checkpoint interval (10 s): no lease has a checkpoint, every one gets
// TTL + 2 s from the promotion. Run with -benchtime=1x.
func BenchmarkLeaseMassExpiryPutLatency(b *testing.B) {
	for b.Loop() {
		massExpiry(b)
	}
}

func massExpiry(b *testing.B) {
	const (
		n   = 10_000
		ttl = 9 * time.Second
		et  = 2 * time.Second
	)
	c := agenttest.Start(b, 3, agenttest.Options{ElectionTimeout: et, HeartbeatInterval: 100 * time.Millisecond})
	cli := c.Client(c.Follower())
	ctx := b.Context()

	// Grant from 64 goroutines, then attach a key to each lease, 128 per
	// txn.
	granting := time.Now()
	ids := make([]clientv3.LeaseID, n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				g, err := cli.Grant(ctx, int64(ttl/time.Second))
				if err != nil {
					failed.Add(1)
					continue
				}
				ids[i] = g.ID
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d grants failed", failed.Load())
	}
	for i := 0; i < n; i += 128 {
		var ops []clientv3.Op
		for j := i; j < min(i+128, n); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("mass/%05d", j), "v", clientv3.WithLease(ids[j])))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if d := time.Since(granting); d > ttl-time.Second {
		b.Fatalf("granting took %v: leases expire before the leader change", d)
	}

	// A leader change gives every lease the deadline now + TTL + 2 s.
	from := c.Leader()
	to := (from + 1) % 3
	if err := c.Members[from].Agent.Server().Node().TransferLeadership(ctx, c.Members[to].Agent.Server().ID()); err != nil {
		b.Fatal(err)
	}
	promoted := time.Now()
	expiry := promoted.Add(ttl + et)
	baseline := putLatencies(b, cli, 3*time.Second)
	var expiredAfter time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := cli.Get(ctx, "mass/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err == nil && resp.Count == 0 {
				expiredAfter = time.Since(expiry)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	// Sequential puts from just before the expiry until the last key is
	// gone.
	time.Sleep(time.Until(expiry.Add(-200 * time.Millisecond)))
	var during []time.Duration
	for {
		select {
		case <-done:
		default:
			during = append(during, putLatencies(b, cli, 100*time.Millisecond)...)
			continue
		}
		break
	}
	b.ReportMetric(float64(percentile(baseline, 50).Microseconds()), "base-p50-µs")
	b.ReportMetric(float64(percentile(baseline, 99).Microseconds()), "base-p99-µs")
	b.ReportMetric(float64(percentile(during, 50).Microseconds()), "expiry-p50-µs")
	b.ReportMetric(float64(percentile(during, 99).Microseconds()), "expiry-p99-µs")
	b.ReportMetric(float64(percentile(during, 100).Microseconds()), "expiry-max-µs")
	b.ReportMetric(expiredAfter.Seconds(), "s-to-expire-all")
	b.Logf("%d leases expiring together: the last key was deleted %v after the common deadline; %d puts meanwhile: p50 %v p99 %v max %v (before: %d puts, p50 %v p99 %v max %v)",
		n, expiredAfter.Round(time.Millisecond), len(during), percentile(during, 50), percentile(during, 99), percentile(during, 100),
		len(baseline), percentile(baseline, 50), percentile(baseline, 99), percentile(baseline, 100))
}

// putLatencies puts sequentially for d and returns each put's latency.
func putLatencies(b *testing.B, cli *clientv3.Client, d time.Duration) []time.Duration {
	var out []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		start := time.Now()
		if _, err := cli.Put(b.Context(), "probe", "v"); err != nil {
			b.Fatal(err)
		}
		out = append(out, time.Since(start))
	}
	return out
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}
