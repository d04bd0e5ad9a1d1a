package watch

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// benchHub opens a hub with n watchers of prefix "b/" spread over
// min(n, 100) streams, each drained by a goroutine that counts the events
// it receives.
func benchHub(b *testing.B, n int, adjust func(*Config)) (*Hub, writer, *atomic.Int64) {
	b.Helper()
	h, _, wr := newTestHub(b, adjust)
	var received atomic.Int64
	streams := min(n, 100)
	for i := range streams {
		s, err := h.NewStream()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		go func() {
			for r := range s.Chan() {
				received.Add(int64(len(r.Events)))
			}
		}()
		for j := i; j < n; j += streams {
			if _, err := s.Watch(b.Context(), &pb.WatchCreateRequest{Key: []byte("b/"), RangeEnd: prefixEnd("b/")}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return h, wr, &received
}

// BenchmarkNotify measures the applier's cost per revision with n synced
// watchers matching every event. notify-ns/op is the time spent inside
// Notify alone; ns/op also covers the store write and waiting until every
// consumer has the event, so that each Notify runs with all watchers synced.
func BenchmarkNotify(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			h, wr, received := benchHub(b, n, nil)
			var inNotify time.Duration
			i, want := 0, int64(0)
			for b.Loop() {
				rev, evs := wr.store.write(put(fmt.Sprintf("b/%d", i%64), "value"))
				began := time.Now()
				h.Notify(rev, evs)
				inNotify += time.Since(began)
				i++
				want += int64(n)
				for received.Load() < want {
					yield()
				}
			}
			b.ReportMetric(float64(inNotify.Nanoseconds())/float64(i), "notify-ns/op")
			if st := h.Stats(); st.FellBehind != 0 {
				b.Fatalf("watchers fell behind: %+v", st)
			}
		})
	}
}

// BenchmarkFanOutLatency measures the time from Notify until all n
// watchers have received the event (one write in flight at a time).
func BenchmarkFanOutLatency(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			_, wr, received := benchHub(b, n, nil)
			want := int64(0)
			for b.Loop() {
				wr.write(put("b/k", "value"))
				want += int64(n)
				for received.Load() < want {
					// Spin-yield: a channel per event would add its own
					// latency to what is measured.
					yield()
				}
			}
		})
	}
}
