package recipes_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session/sessiontest"
)

func TestQueueFIFO(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/fifo")
	q := recipes.NewQueue(sessiontest.Client(t, cluster.Endpoints()...), "recipes/fifo")
	const n = 30
	for i := range n {
		if err := q.Enqueue(t.Context(), strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := q.Len(t.Context()); err != nil || l != n {
		t.Fatalf("Len = %d, %v; want %d", l, err, n)
	}
	for i := range n {
		v, err := q.Dequeue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if v != strconv.Itoa(i) {
			t.Fatalf("dequeued %s, want %d", v, i)
		}
	}
	if l, err := q.Len(t.Context()); err != nil || l != 0 {
		t.Fatalf("Len after draining = %d, %v", l, err)
	}
}

func TestQueueDequeueWaits(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/fifo-wait")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	q := recipes.NewQueue(cli, "recipes/fifo-wait")
	got := make(chan string, 1)
	go func() {
		v, err := q.Dequeue(t.Context())
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	select {
	case v := <-got:
		t.Fatalf("Dequeue of an empty queue returned %q", v)
	case <-time.After(200 * time.Millisecond):
	}
	if err := recipes.NewQueue(cli, "recipes/fifo-wait").Enqueue(t.Context(), "late"); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if v != "late" {
			t.Fatalf("dequeued %q", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dequeue did not wake up for an enqueued item")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := q.Dequeue(ctx); err == nil {
		t.Fatal("Dequeue of an empty queue with a deadline succeeded")
	}
}

// consume runs consumers until they have n items between them, and returns
// what each got, in order.
func consume(t *testing.T, qs []func(context.Context) (string, error), n int) [][]string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var mu sync.Mutex
	total := 0
	got := make([][]string, len(qs))
	var wg sync.WaitGroup
	for c, dequeue := range qs {
		wg.Go(func() {
			for {
				v, err := dequeue(ctx)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("consumer %d: %v", c, err)
					}
					return
				}
				mu.Lock()
				got[c] = append(got[c], v)
				total++
				if total == n {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// checkExactlyOnce checks that the consumers got every produced item once,
// and that each consumer got each producer's items in production order.
func checkExactlyOnce(t *testing.T, got [][]string, producers, perProducer int) {
	t.Helper()
	seen := map[string]int{}
	for c, vs := range got {
		last := map[string]int{}
		for _, v := range vs {
			seen[v]++
			p, i, _ := strings.Cut(v, "-")
			n, _ := strconv.Atoi(i)
			if prev, ok := last[p]; ok && n <= prev {
				t.Errorf("consumer %d got %s after %s-%d: out of order", c, v, p, prev)
			}
			last[p] = n
		}
	}
	for p := range producers {
		for i := range perProducer {
			if v := fmt.Sprintf("p%d-%d", p, i); seen[v] != 1 {
				t.Errorf("%s dequeued %d times", v, seen[v])
			}
		}
	}
}

func TestQueueConcurrent(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/fifo-concurrent")
	eps := cluster.Endpoints()
	const name, producers, perProducer, consumers = "recipes/fifo-concurrent", 3, 30, 3
	var wg sync.WaitGroup
	for p := range producers {
		q := recipes.NewQueue(sessiontest.Client(t, eps[p%len(eps)]), name)
		wg.Go(func() {
			for i := range perProducer {
				if err := q.Enqueue(t.Context(), fmt.Sprintf("p%d-%d", p, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var qs []func(context.Context) (string, error)
	for c := range consumers {
		qs = append(qs, recipes.NewQueue(sessiontest.Client(t, eps[c%len(eps)]), name).Dequeue)
	}
	got := consume(t, qs, producers*perProducer)
	wg.Wait()
	checkExactlyOnce(t, got, producers, perProducer)
}

func TestPriorityQueueOrder(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/prio")
	q := recipes.NewPriorityQueue(sessiontest.Client(t, cluster.Endpoints()...), "recipes/prio")
	type item struct {
		prio uint16
		seq  int
	}
	var items []item
	for i := range 40 {
		it := item{prio: uint16((i * 7) % 5), seq: i}
		items = append(items, it)
		if err := q.Enqueue(t.Context(), fmt.Sprintf("%d/%d", it.prio, it.seq), it.prio); err != nil {
			t.Fatal(err)
		}
	}
	sort.SliceStable(items, func(a, b int) bool { return items[a].prio < items[b].prio })
	for _, want := range items {
		v, err := q.Dequeue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if w := fmt.Sprintf("%d/%d", want.prio, want.seq); v != w {
			t.Fatalf("dequeued %s, want %s", v, w)
		}
	}
	if l, err := q.Len(t.Context()); err != nil || l != 0 {
		t.Fatalf("Len after draining = %d, %v", l, err)
	}
}

func TestPriorityQueueConcurrent(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/prio-concurrent")
	eps := cluster.Endpoints()
	const name, producers, perProducer, consumers = "recipes/prio-concurrent", 3, 20, 3
	var wg sync.WaitGroup
	for p := range producers {
		q := recipes.NewPriorityQueue(sessiontest.Client(t, eps[p%len(eps)]), name)
		wg.Go(func() {
			for i := range perProducer {
				// One priority per producer keeps its items in order.
				if err := q.Enqueue(t.Context(), fmt.Sprintf("p%d-%d", p, i), uint16(p)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	var qs []func(context.Context) (string, error)
	for c := range consumers {
		qs = append(qs, recipes.NewPriorityQueue(sessiontest.Client(t, eps[c%len(eps)]), name).Dequeue)
	}
	got := consume(t, qs, producers*perProducer)
	wg.Wait()
	checkExactlyOnce(t, got, producers, perProducer)
}
