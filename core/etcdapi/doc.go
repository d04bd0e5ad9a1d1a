// Package etcdapi serves the etcd v3 gRPC API (KV, Watch, Lease, Cluster and
// Maintenance; Auth is not built yet) over Concord's replicated core.
//
// The package is the API edge: it validates requests the way etcd does
// (empty keys, sort options, txn size and duplicate keys, request size),
// answers malformed requests with etcd's gRPC codes and exact messages
// without proposing anything, fills response headers, and maps the core's
// sentinel errors to the errors clientv3 recognises by their text
// (go.etcd.io/etcd/api/v3/v3rpc/rpctypes). What the requests do is the core's
// business, reached through the small interfaces declared here.
package etcdapi
