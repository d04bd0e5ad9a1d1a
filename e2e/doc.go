// Package e2e holds Concord's end-to-end tests: they build the concord
// binary once, start real member processes on 127.0.0.1, drive them with
// the real etcdctl and with clientv3, and kill, stop and restart them to
// check failover, durability and linearizability. The package has no
// non-test code; everything lives in _test.go files.
//
// Basics: `go test ./e2e` (the tests skip under -short). etcdctl is found
// through $ETCDCTL or the repository's bin/etcdctl (`make bin/etcdctl`);
// tests that need it skip when it is absent. E2E_CONCORD_BINARY names a
// concord binary to test instead of building the working tree's.
//
// Caveats: members use short raft timings (heartbeat 50 ms, election
// timeout 500 ms) so that failovers are quick; the failover bound asserted
// is generous (10 s) so that a loaded machine does not make the suite flaky.
package e2e
