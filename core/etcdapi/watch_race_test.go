//go:build race

package etcdapi_test

// raceEnabled: the race detector slows clientv3 and the server about
// tenfold; the largest watch tests scale down under it.
const raceEnabled = true
