package backend_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

var benchValue = make([]byte, 256)

func BenchmarkPut(b *testing.B) {
	be := openTest(b, "")
	defer be.Close()
	var i uint64
	for b.Loop() {
		be.Put(testBucket, fmt.Appendf(nil, "%08d", i), benchValue)
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	be := openTest(b, "")
	defer be.Close()
	for i := range 10_000 {
		be.Put(testBucket, fmt.Appendf(nil, "%08d", i), benchValue)
	}
	if err := be.Commit(); err != nil {
		b.Fatal(err)
	}
	key := []byte("00005000")
	for b.Loop() {
		if _, ok, err := be.Get(testBucket, key); !ok || err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutWith8Readers: writer throughput while 8 goroutines open
// views and range 10 keys, with the flusher committing in the background.
func BenchmarkPutWith8Readers(b *testing.B) {
	be := openTest(b, "")
	defer be.Close()
	for i := range 1000 {
		be.Put(testBucket, fmt.Appendf(nil, "%08d", i), benchValue)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for r := range 8 {
		wg.Go(func() {
			start := fmt.Appendf(nil, "%08d", r*100)
			for !stop.Load() {
				if _, err := be.Range(testBucket, start, nil, 10); err != nil {
					b.Error(err)
					return
				}
				reads.Add(1)
			}
		})
	}
	var i uint64
	for b.Loop() {
		be.Put(testBucket, fmt.Appendf(nil, "%08d", i%100_000), benchValue)
		i++
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(reads.Load())/b.Elapsed().Seconds(), "reads/s")
}
