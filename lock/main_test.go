package lock_test

import (
	"testing"

	"github.com/concordkv/concord/internal/testcluster"
	"github.com/concordkv/concord/session/sessiontest"
)

// cluster is the three-member cluster shared by the tests that inject no
// faults and by the examples; fault tests start their own.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	sessiontest.Main(m, 3, &cluster)
}

// endpoints returns the client endpoints of the shared cluster; a program
// would list its own, such as []string{"127.0.0.1:2379"} for
// `concord agent --dev`.
func endpoints() []string { return cluster.Endpoints() }
