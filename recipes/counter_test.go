package recipes_test

import (
	"sync"
	"testing"

	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session/sessiontest"
)

func TestCounterConcurrentAdd(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/counter")
	eps := cluster.Endpoints()
	const name, goroutines, adds = "recipes/counter", 4, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		c := recipes.NewCounter(sessiontest.Client(t, eps[g%len(eps)]), name)
		wg.Go(func() {
			for range adds {
				if _, err := c.Add(t.Context(), 1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	c := recipes.NewCounter(sessiontest.Client(t, eps...), name)
	if v, err := c.Get(t.Context()); err != nil || v != goroutines*adds {
		t.Fatalf("counter = %d, %v; want %d", v, err, goroutines*adds)
	}
	if v, err := c.Add(t.Context(), -goroutines*adds-5); err != nil || v != -5 {
		t.Fatalf("Add of a negative = %d, %v; want -5", v, err)
	}
}

func TestCounterCompareAndSet(t *testing.T) {
	sessiontest.Fresh(t, sessiontest.Client(t, cluster.Endpoints()...), "recipes/cas")
	cli := sessiontest.Client(t, cluster.Endpoints()...)
	c := recipes.NewCounter(cli, "recipes/cas")
	if v, err := c.Get(t.Context()); err != nil || v != 0 {
		t.Fatalf("missing counter = %d, %v; want 0", v, err)
	}
	if ok, err := c.CompareAndSet(t.Context(), 1, 5); err != nil || ok {
		t.Fatalf("CAS 1->5 on a missing counter = %v, %v; want false", ok, err)
	}
	if ok, err := c.CompareAndSet(t.Context(), 0, 5); err != nil || !ok {
		t.Fatalf("CAS 0->5 on a missing counter = %v, %v; want true", ok, err)
	}
	if ok, err := c.CompareAndSet(t.Context(), 4, 6); err != nil || ok {
		t.Fatalf("CAS 4->6 on 5 = %v, %v; want false", ok, err)
	}
	// Concurrent increments by CAS loops: every success is one increment.
	const goroutines, incs = 4, 10
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for done := 0; done < incs; {
				v, err := c.Get(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				ok, err := c.CompareAndSet(t.Context(), v, v+1)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					done++
				}
			}
		})
	}
	wg.Wait()
	if v, err := c.Get(t.Context()); err != nil || v != 5+goroutines*incs {
		t.Fatalf("counter = %d, %v; want %d", v, err, 5+goroutines*incs)
	}
}
