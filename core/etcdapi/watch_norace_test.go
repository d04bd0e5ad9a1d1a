//go:build !race

package etcdapi_test

// raceEnabled: see watch_race_test.go.
const raceEnabled = false
