package concurrencyapi_test

import (
	"fmt"
	"sync"
	"testing"

	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/concordkv/concord/internal/testcluster"
)

// BenchmarkLockService measures Lock+Unlock through the Lock service's
// generated client, uncontended and with 4 contenders (each on its own
// lease and member connection), on three Concord members and on three
// real etcd members (bin/etcd), as processes on loopback.
func BenchmarkLockService(b *testing.B) {
	for _, server := range []string{"concord", "etcd"} {
		for _, contenders := range []int{1, 4} {
			b.Run(fmt.Sprintf("server=%s/contenders=%d", server, contenders), func(b *testing.B) {
				b.Setenv("TESTCLUSTER_SERVER", server)
				c := testcluster.Start(b, 3)
				cli := c.Client()
				eps := c.Endpoints()
				leases := make([]int64, contenders)
				clients := make([]v3lockpb.LockClient, contenders)
				for i := range contenders {
					resp, err := cli.Grant(b.Context(), 600)
					if err != nil {
						b.Fatal(err)
					}
					leases[i] = int64(resp.ID)
					conn, err := grpc.NewClient(eps[i%len(eps)], grpc.WithTransportCredentials(insecure.NewCredentials()))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { conn.Close() })
					clients[i] = v3lockpb.NewLockClient(conn)
				}
				name := []byte("bench")
				var next sync.Mutex // hands out the b.N cycles
				remaining := b.N
				b.ResetTimer()
				var wg sync.WaitGroup
				for i := range contenders {
					wg.Go(func() {
						for {
							next.Lock()
							if remaining == 0 {
								next.Unlock()
								return
							}
							remaining--
							next.Unlock()
							resp, err := clients[i].Lock(b.Context(), &v3lockpb.LockRequest{Name: name, Lease: leases[i]})
							if err != nil {
								b.Error(err)
								return
							}
							if _, err := clients[i].Unlock(b.Context(), &v3lockpb.UnlockRequest{Key: resp.Key}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// BenchmarkCampaignResign measures an uncontended Campaign+Resign through
// the Election service on Concord and on etcd.
func BenchmarkCampaignResign(b *testing.B) {
	for _, server := range []string{"concord", "etcd"} {
		b.Run("server="+server, func(b *testing.B) {
			b.Setenv("TESTCLUSTER_SERVER", server)
			c := testcluster.Start(b, 3)
			resp, err := c.Client().Grant(b.Context(), 600)
			if err != nil {
				b.Fatal(err)
			}
			conn, err := grpc.NewClient(c.Endpoints()[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ec := epb.NewElectionClient(conn)
			req := &epb.CampaignRequest{Name: []byte("bench-e"), Lease: int64(resp.ID), Value: []byte("v")}
			for b.Loop() {
				won, err := ec.Campaign(b.Context(), req)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := ec.Resign(b.Context(), &epb.ResignRequest{Leader: won.Leader}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
