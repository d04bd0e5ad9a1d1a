// Package version holds Concord's release version and the etcd API version
// it reports to clients.
package version

const (
	// Version is Concord's own release version.
	Version = "0.1.0-dev"

	// EtcdVersion is the etcd server version Concord reports in
	// Maintenance.Status and /version. Clients gate features on it
	// (kube-apiserver, for one, needs at least 3.5.13 or 3.4.31), so it
	// names the etcd release whose API Concord implements.
	EtcdVersion = "3.6.0"

	// EtcdClusterVersion is the cluster version reported next to EtcdVersion.
	EtcdClusterVersion = "3.6.0"
)
