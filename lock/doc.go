// Package lock provides distributed locks with fencing tokens on Concord or
// any etcd cluster: Mutex (one holder) and RWMutex (readers share, writers
// hold alone). Both are built on the public client API only (clientv3 and
// package session).
//
// # Basics
//
//	s, _ := session.New(ctx, cli, session.WithTTL(10*time.Second))
//	m := lock.NewMutex(s, "/myapp/locks/db")
//	token, err := m.Lock(ctx)
//	...
//	// Fence writes on the hold: refused if the lock was lost meanwhile.
//	cli.Txn(ctx).If(m.IsOwner()).Then(clientv3.OpPut(k, v)).Commit()
//	// Or hand the token to the protected resource, which refuses tokens
//	// lower than the highest it has seen.
//	...
//	select {
//	case <-m.Done(): // lost: m.Err() says why
//	default:
//	}
//	err = m.Unlock(ctx)
//
// A lock is the set of keys under NAME/, one per participant, each bound to
// its session's lease. Participants are served in the order their keys were
// created; the holder is the one with the oldest key, and its fencing
// Token is that key's create revision, so successive holders get strictly
// increasing tokens. Each waiter watches only the key created just before
// its own: a release wakes one waiter, not all of them.
//
// Done closes and Err turns non-nil the moment the hold ends: the key was
// deleted (revoked lease, someone's delete) or the session ended. A waiting
// Lock fails the same way, with an error wrapping ErrLost, as soon as its
// own key or session is lost; and when its context ends, it deletes its
// key before returning.
//
// # Key layout
//
//	NAME/<lease-hex>-<random-hex>        Mutex participant
//	NAME/<lease-hex>                     Mutex participant with WithLeaseKey
//	NAME/read/<lease-hex>-<random-hex>   RWMutex reader
//	NAME/write/<lease-hex>-<random-hex>  RWMutex writer
//
// Values are empty unless WithValue sets them. `etcdctl get --prefix NAME/
// --sort-by=CREATE` lists the holder first, then the waiters in order.
//
// # Compatibility with etcd
//
// Mutex excludes, and is excluded by, etcd's concurrency.Mutex on the same
// NAME, and therefore `etcdctl lock NAME` and etcd's v3lock service: they
// all queue keys under NAME/ and serve the oldest create revision. With
// WithLeaseKey the key is exactly the one concurrency.Mutex would use for
// the same lease. RWMutex follows its own layout (etcd's experimental
// recipe orders by modification revision and is not compatible).
//
// # Caveats
//
//   - A Mutex is one participant. Goroutines that must exclude each other
//     need a Mutex each; they may share a session, since each Mutex has a
//     key of its own (unless WithLeaseKey, where one session has one key
//     per NAME).
//   - There is no sync.Locker adapter: Lock can fail (network, lost
//     session), and Locker has no way to say so.
//   - Holding the lock is a belief that can be out of date by the time it
//     is acted upon; fence writes with IsOwner or the Token, and watch Done.
//   - A Txn of comparisons alone, with no operation, is answered by etcd
//     (and Concord, which follows it) from the local member's state, not
//     linearizably: to check IsOwner without writing, add an operation
//     such as clientv3.OpGet(m.Key()).
//   - A lock name that is a prefix of another (NAME and NAME/sub) makes the
//     two share participants. Mixing Mutex and RWMutex on one NAME makes
//     Mutex wait for readers too, and readers ignore Mutex holders.
//   - Unlock after a request error keeps the hold; retry it. A participant
//     that gives up waiting deletes its key within the session TTL or, if
//     it cannot reach the cluster, the next call on the same Mutex does;
//     meanwhile the key waits, and may hold, for nobody: Close the session
//     if that matters.
package lock
