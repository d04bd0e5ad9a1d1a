// Package recipes provides coordination recipes in the manner of
// ZooKeeper's Curator, on Concord or any etcd cluster, using the public
// client API only (clientv3 and package session): Semaphore, Barrier,
// DoubleBarrier, Queue, PriorityQueue, Counter and Group.
//
// # Basics
//
//	s, _ := session.New(ctx, cli, session.WithTTL(10*time.Second))
//
//	sem := recipes.NewSemaphore(s, "/myapp/sem/uploads", 3) // 3 at once
//	err := sem.Acquire(ctx)
//	defer sem.Release(ctx)
//
//	q := recipes.NewQueue(cli, "/myapp/queue/jobs")
//	q.Enqueue(ctx, "job-1")
//	job, err := q.Dequeue(ctx) // waits for an item
//
//	c := recipes.NewCounter(cli, "/myapp/counters/visits")
//	n, err := c.Add(ctx, 1)
//
//	g := recipes.NewGroup(cli, "/myapp/group/workers")
//	m, err := g.Join(ctx, s, "worker-7", "10.0.0.7:9000")
//	for view := range g.Watch(ctx) { ... } // joins, updates, leaves, in order
//
// Every recipe is a set of keys under its name, visible with `etcdctl get
// --prefix NAME`. Participants that stand for a live process (semaphore
// permits, double-barrier places, group members) are bound to their
// session's lease: when the process dies, they go when the lease expires,
// and Done/Err on a semaphore or a group membership say so the moment it
// happens (a double-barrier participant learns it from Enter's or Leave's
// error). Waiting participants watch only what can let them through, from
// the revision they last read, so that no change is missed. A semaphore
// release wakes one waiter; Barrier and the double barrier wake everyone by
// nature, and so does an Enqueue for the consumers waiting on an empty
// queue (one of them gets the item; the others wait again).
//
// # Key layout
//
//	Semaphore      NAME/<lease-hex>-<random-hex>         one per participant
//	Barrier        NAME                                  while the barrier is up
//	DoubleBarrier  NAME/waiters/<lease-hex>-<random-hex> one per participant
//	               NAME/ready                            while a round is released
//	Queue          NAME/<random-hex>                     one per item, FIFO by create revision
//	PriorityQueue  NAME/<priority %05d>/<random-hex>     lowest number first
//	Counter        NAME                                  decimal text
//	Group          NAME/<member-id>                      value: the member's value
//
// The double barrier uses the names of etcd's experimental recipe; the
// other layouts are this package's own. Nothing here is wire-compatible
// with etcd's experimental recipes package, whose queues order by
// modification revision.
//
// # Caveats
//
//   - A Semaphore, DoubleBarrier or Membership value is one participant;
//     goroutines need one each (they may share a session). All
//     participants of a semaphore or double barrier must agree on the
//     limit or count.
//   - Queue delivery is at most once: a Dequeue whose claim request fails
//     without an answer may lose that item. An Enqueue or Counter.Add that
//     fails may have been applied; retrying may duplicate it.
//   - A priority-queue item enqueued with a lower number while a Dequeue
//     is already claiming another item can lose that race.
//   - A Barrier key has no lease: a holder that dies leaves it up until
//     someone Releases it.
//   - Names that are prefixes of one another (NAME and NAME/sub) share
//     keys: give every recipe a name of its own.
//   - Waiting participants wait through the cluster's trouble (no leader, an
//     unreachable member) for as long as their session lives; a request
//     that cannot be retried safely returns its error.
package recipes
