// Package election elects a leader among sessions of Concord or of any etcd
// cluster, and lets anyone observe who leads, on the public client API only
// (clientv3 and package session).
//
// # Basics
//
//	s, _ := session.New(ctx, cli, session.WithTTL(10*time.Second))
//	e := election.New(s, "/myapp/election/scheduler")
//	l, err := e.Campaign(ctx, "host-a:8080") // blocks until elected
//	...
//	select {
//	case <-l.Done(): // no longer leader: l.Err() says why
//	case <-work:
//		// Fence writes on the leadership.
//		cli.Txn(ctx).If(l.IsLeader()).Then(clientv3.OpPut(k, v)).Commit()
//	}
//	l.Proclaim(ctx, "host-a:9090") // new value, same leadership
//	l.Resign(ctx)                  // the next candidate is elected
//
//	// Anyone with a client, no session needed:
//	for li := range election.Observe(ctx, cli, "/myapp/election/scheduler") {
//		fmt.Println(li.Value, li.Token)
//	}
//
// An election is a lock.Mutex whose participants carry a value: candidates
// are keys NAME/<lease-hex> bound to their sessions' leases, elected in the
// order they were created. The leader is the oldest; its Token (the key's
// create revision) strictly increases from one leader to the next, so
// downstream systems can refuse a deposed leader. The leadership ends, and
// Done closes, the moment the key is deleted or the session ends; a leader
// whose process dies is replaced when its lease expires (its TTL after the
// last renewal).
//
// Observe replays every candidate's changes from a revision on, so
// observers see every leader and every proclaimed value, in order, even a
// leader that lasted a single revision; etcd's Observe follows only the
// current leader's key and can skip such a leader.
//
// A process that restarts with its saved lease (session.WithLease) takes
// its candidacy back with Resume, keeping its token: a leader survives a
// restart shorter than its TTL without an election.
//
// # Key layout and compatibility
//
//	NAME/<lease-hex>   one candidate; value: what it campaigned or proclaimed
//
// This is exactly etcd's concurrency.Election layout, so candidates of
// `etcdctl elect NAME VALUE`, of etcd's v3election service and of this
// package run in one election, and `etcdctl elect -l NAME` observes it.
//
// # Caveats
//
//   - One session is one candidate per election: a second Campaign on the
//     same Election fails with ErrCampaigning until Resign.
//   - Leadership is a belief that can be out of date when acted upon: fence
//     writes with IsLeader or the Token, and watch Done.
//   - A leader that cannot reach the cluster learns it lost the leadership
//     only when its session's keepalive deadline passes (at most its TTL),
//     by which time the server has expired it too: there is no moment when
//     two leaders both believe they lead with valid sessions, except by the
//     clock drift between them and the server.
package election
