// Package lease is Concord's lease table: etcd's leases (grant, revoke,
// keepalive, time-to-live, keys attached by puts) replicated through Raft,
// with expiry decided by the leader alone.
package lease
