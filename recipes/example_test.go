package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/concordkv/concord/recipes"
	"github.com/concordkv/concord/session"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// connect returns a client and a session on it, as the examples need.
func connect(ctx context.Context) (*clientv3.Client, *session.Session) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	return cli, s
}

func ExampleNewSemaphore() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	a := recipes.NewSemaphore(s, "/example/sem/uploads", 2)
	b := recipes.NewSemaphore(s, "/example/sem/uploads", 2)
	c := recipes.NewSemaphore(s, "/example/sem/uploads", 2)
	a.Acquire(ctx)
	b.Acquire(ctx)
	fmt.Println("third:", errors.Is(c.TryAcquire(ctx), recipes.ErrNoPermit))
	a.Release(ctx)
	fmt.Println("third after a release:", c.TryAcquire(ctx) == nil)
	b.Release(ctx)
	c.Release(ctx)
	// Output:
	// third: true
	// third after a release: true
}

func ExampleNewBarrier() {
	ctx := context.Background()
	cli, _ := connect(ctx)
	defer cli.Close()

	b := recipes.NewBarrier(cli, "/example/barrier/start")
	b.Hold(ctx)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { recipes.NewBarrier(cli, "/example/barrier/start").Wait(ctx) })
	}
	b.Release(ctx) // all three waiters go
	wg.Wait()
	fmt.Println("all passed")
	// Output:
	// all passed
}

func ExampleNewDoubleBarrier() {
	ctx := context.Background()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var steps []string
	for range 3 {
		b := recipes.NewDoubleBarrier(s, "/example/double/phase", 3)
		wg.Go(func() {
			if err := b.Enter(ctx); err != nil { // returns when all 3 entered
				log.Fatal(err)
			}
			mu.Lock()
			steps = append(steps, "work")
			mu.Unlock()
			if err := b.Leave(ctx); err != nil { // returns when all 3 left
				log.Fatal(err)
			}
		})
	}
	wg.Wait()
	fmt.Println(steps)
	// Output:
	// [work work work]
}

func ExampleNewQueue() {
	ctx := context.Background()
	cli, _ := connect(ctx)
	defer cli.Close()

	q := recipes.NewQueue(cli, "/example/queue/jobs")
	for _, job := range []string{"first", "second", "third"} {
		q.Enqueue(ctx, job)
	}
	for range 3 {
		job, _ := q.Dequeue(ctx)
		fmt.Println(job)
	}
	// Output:
	// first
	// second
	// third
}

func ExampleNewPriorityQueue() {
	ctx := context.Background()
	cli, _ := connect(ctx)
	defer cli.Close()

	q := recipes.NewPriorityQueue(cli, "/example/pqueue/alerts")
	q.Enqueue(ctx, "disk 80%", 5)
	q.Enqueue(ctx, "datacenter on fire", 0)
	q.Enqueue(ctx, "disk 95%", 1)
	for range 3 {
		v, _ := q.Dequeue(ctx)
		fmt.Println(v)
	}
	// Output:
	// datacenter on fire
	// disk 95%
	// disk 80%
}

func ExampleNewCounter() {
	ctx := context.Background()
	cli, _ := connect(ctx)
	defer cli.Close()

	cli.Delete(ctx, "/example/counter/visits") // start from zero
	c := recipes.NewCounter(cli, "/example/counter/visits")
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { c.Add(ctx, 1) })
	}
	wg.Wait()
	n, _ := c.Get(ctx)
	fmt.Println(n)
	ok, _ := c.CompareAndSet(ctx, 5, 100)
	fmt.Println(ok)
	ok, _ = c.CompareAndSet(ctx, 5, 200)
	fmt.Println(ok)
	// Output:
	// 5
	// true
	// false
}

func ExampleNewGroup() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cli, s := connect(ctx)
	defer cli.Close()
	defer s.Close(ctx)

	g := recipes.NewGroup(cli, "/example/group/workers")
	views := g.Watch(ctx)
	<-views // the membership now: empty

	m, err := g.Join(ctx, s, "worker-1", "10.0.0.1:9000")
	if err != nil {
		log.Fatal(err)
	}
	v := <-views
	fmt.Println("joined:", v.Joined[0].ID, v.Joined[0].Value)
	members, _ := g.Members(ctx)
	fmt.Println("members:", len(members))
	m.Leave(ctx)
	v = <-views
	fmt.Println("left:", v.Left[0].ID)
	// Output:
	// joined: worker-1 10.0.0.1:9000
	// members: 1
	// left: worker-1
}
