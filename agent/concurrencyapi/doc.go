// Package concurrencyapi serves etcd's Lock (v3lockpb) and Election
// (v3electionpb) gRPC services, wire-identical to etcd's, for clients that
// do not build locks and elections themselves: jetcd, the JSON gateway
// (POST /v3/lock/lock, /v3/election/campaign, ...), any gRPC client
// generated from etcd's .proto files.
//
// # Basics
//
// As in etcd, the services are clients of the member that serves them: a
// clientv3 client connected to the member's own client port, and on it
// the coordination SDK (packages session, lock and election). So a lock
// taken through the Lock service is exactly a lock.Mutex: its key is
// NAME/<lease-hex>, the key etcd's concurrency.Mutex, `etcdctl lock` and
// etcd's own Lock service use for that lease, and all of them exclude each
// other on the same NAME. A candidate of the Election service is an
// election.Election candidate, NAME/<lease-hex>, the key of etcd's
// concurrency.Election and `etcdctl elect`.
//
//	cfg := concurrencyapi.DefaultConfig()
//	cfg.Endpoint = "127.0.0.1:2379" // this member's client port
//	svc, err := concurrencyapi.New(cfg)
//	svc.Register(grpcServer)
//	...
//	svc.Stop(ctx)  // ends waiting calls and Observe streams
//	svc.Close()    // after the gRPC server stopped
//
// Per call, as etcd does it:
//   - Lock(name, lease) queues the key NAME/<lease-hex>, bound to the
//     caller's lease, and answers once it is the oldest key under NAME/,
//     with the key (the fencing token is its create revision). Lease 0
//     grants a lease of session.DefaultTTL that nobody renews.
//   - Unlock(key) deletes the key.
//   - Campaign(name, value, lease) waits until the lease's candidate is the
//     oldest under NAME/ and answers its LeaderKey{name, key, rev, lease},
//     rev being the key's create revision; Proclaim and Resign act on a
//     LeaderKey, fenced on that create revision.
//   - Leader(name) answers the oldest candidate's key-value; Observe(name)
//     streams it at every change of leader or of its value.
//
// Errors have etcd's codes and messages: a server error the SDK met
// (etcdserver: requested lease not found, ...) is passed on as the server
// gave it, so that clients map it back; the recipes' own errors are etcd's
// ("election: not leader", "election: no leader", "mutex: session is
// expired", `"leader" field must be provided`, all with code Unknown).
//
// # Caveats
//
//   - While a Lock or Campaign call waits, the member renews the caller's
//     lease (every third of its TTL), because the SDK's session does; etcd
//     renews it once, when the call starts. A waiter whose own keepalives
//     stopped therefore keeps its place as long as its call is open. Once
//     the call answers, the member no longer touches the lease: keeping
//     the lock or the leadership is the caller's job, as with etcd.
//   - A waiter whose lease is revoked, or whose key is deleted, is answered
//     at once ("mutex: session is expired"); etcd answers only when its
//     predecessors are gone.
//   - Observe reports a change of leader or of its value, not a re-put of
//     the same value, and also a leader that lasted one revision (etcd's
//     follows only the current leader's key and can miss it).
//   - A Lock or Campaign that won after its caller left releases what it
//     won, so that nobody holds a lock its caller was told it did not get;
//     etcd leaves it held.
//   - Stop ends waiting calls with etcd's "etcdserver: server stopped"
//     (Unavailable), so that the member's gRPC server can stop gracefully;
//     a waiter's key is deleted before its call returns.
//   - The internal client carries no credentials: once authentication is
//     enabled, the services need the caller's token forwarded (not done
//     yet; Concord does not enforce authentication yet).
package concurrencyapi
