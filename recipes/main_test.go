package recipes_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/session/sessiontest"
)

// cluster is the three-member cluster shared by the tests that inject no
// faults and by the examples; fault tests start their own.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	c, stop, err := sessiontest.Start(3)
	if errors.Is(err, sessiontest.ErrNoServer) {
		fmt.Fprintln(os.Stderr, "skipping every test:", err)
		os.Exit(0)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	stop()
	os.Exit(code)
}

// endpoints returns the client endpoints of the shared cluster; a program
// would list its own, such as []string{"127.0.0.1:2379"} for
// `concord agent --dev`.
func endpoints() []string { return cluster.Endpoints() }
