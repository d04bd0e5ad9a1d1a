// Command leasegrant measures LeaseGrant throughput against a running
// cluster of Concord or etcd: etcd's own `benchmark` tool has no grant
// workload. It prints the two lines bench/cluster.sh reads, in that tool's
// format ("Requests/sec:" and "99% in ... secs.").
//
//	go run ./bench/leasegrant --endpoints 127.0.0.1:2379 --conns 10 --clients 100 --total 20000
//
// Each grant is followed by nothing: leases expire on their own (TTL 60 s),
// so the cluster keeps them all for the length of the run, as a real mass
// of short-lived sessions would.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client endpoints")
	conns := flag.Int("conns", 1, "gRPC connections, shared round-robin by the clients")
	clients := flag.Int("clients", 1, "concurrent clients")
	total := flag.Int("total", 10000, "grants in all")
	ttl := flag.Int64("ttl", 60, "lease TTL in seconds")
	flag.Parse()
	if err := run(strings.Split(*endpoints, ","), *conns, *clients, *total, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "leasegrant:", err)
		os.Exit(1)
	}
}

func run(endpoints []string, conns, clients, total int, ttl int64) error {
	var cs []*clientv3.Client
	for range max(conns, 1) {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return err
		}
		defer c.Close()
		cs = append(cs, c)
	}
	var next atomic.Int64
	latencies := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		cli := cs[i%len(cs)]
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				t := time.Now()
				if _, err := cli.Grant(context.Background(), ttl); err != nil {
					errs <- err
					return
				}
				latencies[i] = append(latencies[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	fmt.Printf("  Requests/sec:\t%.4f\n", float64(len(all))/elapsed.Seconds())
	fmt.Printf("  99%% in %.4f secs.\n", all[len(all)*99/100].Seconds())
	return nil
}
