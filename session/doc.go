// Package session keeps a lease alive for a client of Concord (or of any
// etcd cluster) and says the moment it is lost. It is the base of the
// coordination SDK: lock keys, election candidacies, semaphore permits and
// group memberships are bound to a session's lease, so they vanish when the
// process that owns them dies.
//
// # Basics
//
//	s, err := session.New(ctx, cli, session.WithTTL(10*time.Second))
//	...
//	defer s.Close(context.Background())
//	select {
//	case <-s.Done():
//		log.Print(s.Err()) // wraps ErrExpired, ErrKeepAliveTimeout or ErrClosed
//	...
//	}
//
// New grants a lease and renews it every TTL/3. Done closes, and Err and
// context.Cause(s.Context()) say why, as soon as one of these happens:
//   - a renewal finds the lease gone (revoked, or expired on the server):
//     ErrExpired;
//   - no renewal was confirmed within the TTL, counted from when the last
//     confirmed renewal was sent (the earliest moment the server may expire
//     it): ErrKeepAliveTimeout;
//   - Close, Orphan, or the client's Close: ErrClosed.
//
// Close revokes the lease, deleting its keys at once; Orphan leaves it to
// expire. A process that saved Lease() can resume it after a restart with
// WithLease, and with it its keys: a lock hold or a leadership survives a
// quick restart.
//
// Hold watches one key the session created and ends the moment the key is
// deleted or the session ends: lock.Mutex.Done and friends are Holds.
//
// # Caveats
//
//   - Revocation by someone else is noticed at the next renewal (within
//     TTL/3); a Hold on a key bound to the lease notices at once, because
//     revocation deletes the key.
//   - A session that ended stays ended: make a new one. Keys bound to the
//     old lease are gone (or will be, after the TTL, if Done closed because
//     the cluster could not be reached).
//   - ErrKeepAliveTimeout is a presumption made from the local clock; the
//     lease may outlive it by clock drift, never the other way round.
//   - TTLs are whole seconds on the wire; the server raises small TTLs to
//     its minimum (etcd: 1.5 election timeouts, 2s by default). TTL reports
//     what was granted.
package session
