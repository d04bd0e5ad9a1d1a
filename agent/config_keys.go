package agent

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// keySpec is one configuration key in all its forms. The YAML key is key;
// the flag is --flag; the environment variable is CONCORD_ + flag in upper
// case with '-' as '_'. Keys under a section are dotted
// ("client-transport-security.cert-file") and their flags are etcd's
// ("--cert-file", "--peer-cert-file").
type keySpec struct {
	key   string
	flag  string
	usage string
	group string // heading in docs/configuration.md
	// docDefault is the default as the docs and --help show it, when the
	// value in DefaultConfig is derived from other keys.
	docDefault string
	// field binds the key to its Config field; nil for unsupported keys.
	field func(c *Config) keyValue

	// Unsupported etcd options: newScratch makes a throw-away value of the
	// option's type (to check what the user wrote parses), accepted holds
	// etcd's default(s), which the user may write because Concord behaves
	// that way anyway, and why says what to do instead.
	newScratch func() keyValue
	accepted   []string
	why        string
}

func (s *keySpec) unsupported() bool { return s.field == nil }

// envName is the key's environment variable.
func (s *keySpec) envName() string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(s.flag, "-", "_"))
}

// keyIndex is the table of keys with its lookups. It is built per call
// (newKeyIndex) so that no table is shared mutable package state.
type keyIndex struct {
	specs  []*keySpec
	byKey  map[string]*keySpec
	byFlag map[string]*keySpec
	byEnv  map[string]*keySpec
	// sections are the YAML keys that hold a mapping of keys.
	sections map[string]sectionKind
	// reservedWhy says, for each reserved section, what it waits for.
	reservedWhy map[string]string
}

type sectionKind int

const (
	sectionKeys        sectionKind = iota // its keys are in the table ("client-transport-security.cert-file")
	sectionUnsupported                    // an etcd section Concord does not implement; accepted only empty
	sectionReserved                       // a Concord section for a later version: refused
)

// Section names.
const (
	secClientTLS = "client-transport-security"
	secPeerTLS   = "peer-transport-security"
	secSocket    = "socket-options"
)

func newKeyIndex() *keyIndex {
	idx := &keyIndex{
		byKey:  map[string]*keySpec{},
		byFlag: map[string]*keySpec{},
		byEnv:  map[string]*keySpec{},
		sections: map[string]sectionKind{
			secClientTLS:       sectionKeys,
			secPeerTLS:         sectionKeys,
			secSocket:          sectionKeys,
			"discovery-config": sectionUnsupported,
		},
		// Concord's own sections that no part of the agent reads yet:
		// refusing them beats accepting settings that do nothing.
		reservedWhy: map[string]string{
			"dns":      "the DNS interface comes with the service registry",
			"gossip":   "gossip membership comes with the service registry",
			"services": "service registration comes with the service registry",
		},
	}
	for name := range idx.reservedWhy {
		idx.sections[name] = sectionReserved
	}
	for _, s := range supportedKeys() {
		idx.add(s)
	}
	for _, s := range unsupportedKeys() {
		idx.add(s)
	}
	return idx
}

func (idx *keyIndex) add(s *keySpec) {
	idx.specs = append(idx.specs, s)
	idx.byKey[s.key] = s
	idx.byFlag[s.flag] = s
	idx.byEnv[s.envName()] = s
}

// topLevelNames lists the names a file may use at the top level, for
// suggestions.
func (idx *keyIndex) topLevelNames() []string {
	var names []string
	for _, s := range idx.specs {
		if !strings.Contains(s.key, ".") {
			names = append(names, s.key)
		}
	}
	for name := range idx.sections {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// sectionNames lists the keys inside a section, for suggestions.
func (idx *keyIndex) sectionNames(section string) []string {
	var names []string
	for _, s := range idx.specs {
		if sub, ok := strings.CutPrefix(s.key, section+"."); ok {
			names = append(names, sub)
		}
	}
	return names
}

func supportedKeys() []*keySpec {
	str := func(f func(c *Config) *string) func(c *Config) keyValue {
		return func(c *Config) keyValue { return stringValue{f(c)} }
	}
	boolean := func(f func(c *Config) *bool) func(c *Config) keyValue {
		return func(c *Config) keyValue { return boolValue{f(c)} }
	}
	list := func(f func(c *Config) *[]string) func(c *Config) keyValue {
		return func(c *Config) keyValue { return listValue{f(c)} }
	}
	dur := func(example string, f func(c *Config) *time.Duration) func(c *Config) keyValue {
		return func(c *Config) keyValue { return durationValue{f(c), example} }
	}
	millis := func(f func(c *Config) *time.Duration) func(c *Config) keyValue {
		return func(c *Config) keyValue { return unitValue{f(c), time.Millisecond, "milliseconds"} }
	}
	k := func(key, usage string, field func(c *Config) keyValue) *keySpec {
		return &keySpec{key: key, flag: key, usage: usage, field: field}
	}
	var specs []*keySpec
	group := func(name string, members ...*keySpec) {
		for _, s := range members {
			s.group = name
		}
		specs = append(specs, members...)
	}
	group("Member",
		k("name", "Human-readable name for this member, unique in the cluster.",
			str(func(c *Config) *string { return &c.Name })),
		&keySpec{key: "data-dir", flag: "data-dir", docDefault: "<name>.etcd",
			usage: "Path to the data directory.",
			field: str(func(c *Config) *string { return &c.DataDir })},
		k("wal-dir", "Path to a dedicated directory for the raft log (default: inside data-dir).",
			str(func(c *Config) *string { return &c.WALDir })),
		k("dev", "Run one throw-away node: data in a fresh temporary directory, client and peer URLs on 127.0.0.1:2379 and 127.0.0.1:2380 (fills only what is not set).",
			boolean(func(c *Config) *bool { return &c.Dev })),
	)
	group("Network",
		k("listen-client-urls", "List of URLs to listen on for client traffic (gRPC and the HTTP gateway); hosts must be IP addresses or localhost.",
			list(func(c *Config) *[]string { return &c.Network.ListenClientURLs })),
		&keySpec{key: "advertise-client-urls", flag: "advertise-client-urls", docDefault: DefaultListenClientURL + " (or listen-client-urls, when only those are set)",
			usage: "List of this member's client URLs to advertise to the cluster and to clients.",
			field: list(func(c *Config) *[]string { return &c.Network.AdvertiseClientURLs })},
		k("listen-peer-urls", "List of URLs to listen on for peer traffic (raft and internal RPCs); hosts must be IP addresses or localhost.",
			list(func(c *Config) *[]string { return &c.Network.ListenPeerURLs })),
		&keySpec{key: "initial-advertise-peer-urls", flag: "initial-advertise-peer-urls", docDefault: DefaultListenPeerURL + " (or listen-peer-urls, when only those are set)",
			usage: "List of this member's peer URLs to advertise to the rest of the cluster.",
			field: list(func(c *Config) *[]string { return &c.Network.InitialAdvertisePeerURLs })},
		k("listen-metrics-urls", "List of additional URLs to serve /metrics and the health endpoints on.",
			list(func(c *Config) *[]string { return &c.Metrics.ListenURLs })),
		&keySpec{key: secSocket + ".reuse-address", flag: "socket-reuse-address",
			usage: "Set SO_REUSEADDR on listeners, to bind an address still in TIME_WAIT.",
			field: boolean(func(c *Config) *bool { return &c.Network.SocketReuseAddress })},
		&keySpec{key: secSocket + ".reuse-port", flag: "socket-reuse-port",
			usage: "Set SO_REUSEPORT on listeners, to bind a port already in use.",
			field: boolean(func(c *Config) *bool { return &c.Network.SocketReusePort })},
	)
	group("Cluster",
		&keySpec{key: "initial-cluster", flag: "initial-cluster", docDefault: "<name>=<initial-advertise-peer-urls>",
			usage: "Every member at bootstrap, as name=peerURL,name=peerURL; ignored on restart.",
			field: str(func(c *Config) *string { return &c.Cluster.InitialCluster })},
		k("initial-cluster-token", "Token that makes the new cluster's identity unique during bootstrap.",
			str(func(c *Config) *string { return &c.Cluster.InitialClusterToken })),
		k("initial-cluster-state", "'new' to bootstrap a new cluster, 'existing' to join one this member was added to.",
			str(func(c *Config) *string { return &c.Cluster.InitialClusterState })),
		k("strict-reconfig-check", "Reject membership changes that would cause quorum loss.",
			boolean(func(c *Config) *bool { return &c.Cluster.StrictReconfigCheck })),
		k("max-learners", "Maximum number of learners (non-voting members) in the cluster at once.",
			func(c *Config) keyValue { return intValue[int]{p: &c.Cluster.MaxLearners} }),
	)
	group("Raft",
		k("heartbeat-interval", "Time (in milliseconds) of a heartbeat interval.",
			millis(func(c *Config) *time.Duration { return &c.Raft.HeartbeatInterval })),
		k("election-timeout", "Time (in milliseconds) for an election to time out; at least 5 times heartbeat-interval.",
			millis(func(c *Config) *time.Duration { return &c.Raft.ElectionTimeout })),
		k("pre-vote", "Run raft's pre-vote phase so that a rejoining member does not disrupt the leader.",
			boolean(func(c *Config) *bool { return &c.Raft.PreVote })),
		k("snapshot-count", "Number of applied entries that triggers a raft snapshot and log compaction.",
			func(c *Config) keyValue { return intValue[uint64]{p: &c.Raft.SnapshotCount} }),
		k("snapshot-catchup-entries", "Number of entries kept after a snapshot for slow followers to catch up from.",
			func(c *Config) keyValue { return intValue[uint64]{p: &c.Raft.SnapshotCatchUpEntries} }),
	)
	group("Store",
		k("quota-backend-bytes", "Database size (bytes) that raises the NOSPACE alarm and stops writes; 0 means the default, negative disables.",
			func(c *Config) keyValue { return intValue[int64]{p: &c.Store.QuotaBackendBytes, unit: "bytes"} }),
		k("max-txn-ops", "Maximum number of operations in one transaction.",
			func(c *Config) keyValue { return intValue[int]{p: &c.Store.MaxTxnOps} }),
		k("max-request-bytes", "Maximum client request size in bytes.",
			func(c *Config) keyValue { return intValue[int]{p: &c.Store.MaxRequestBytes, unit: "bytes"} }),
		k("auto-compaction-mode", "How auto-compaction-retention is read: 'periodic' (a duration) or 'revision' (a count).",
			str(func(c *Config) *string { return &c.Store.AutoCompactionMode })),
		k("auto-compaction-retention", "History automatic compaction keeps: '1h', '30m' or a number of hours (periodic), a number of revisions (revision); 0 disables.",
			str(func(c *Config) *string { return &c.Store.AutoCompactionRetention })),
		k("watch-progress-notify-interval", "Interval of progress notifications to idle watchers that asked for them.",
			dur("10m", func(c *Config) *time.Duration { return &c.Store.WatchProgressNotifyInterval })),
		k("lease-revoke-rate", "Maximum expired leases revoked per second (Concord's own).",
			func(c *Config) keyValue { return intValue[int]{p: &c.Store.LeaseRevokeRate} }),
	)
	group("gRPC",
		k("grpc-keepalive-min-time", "Minimum interval a client should wait between pings; faster clients are cut off.",
			dur("5s", func(c *Config) *time.Duration { return &c.GRPC.KeepAliveMinTime })),
		k("grpc-keepalive-interval", "Interval of server-to-client pings on idle connections (0 disables).",
			dur("2h", func(c *Config) *time.Duration { return &c.GRPC.KeepAliveInterval })),
		k("grpc-keepalive-timeout", "Time a ping may go unanswered before the connection is closed (0 disables).",
			dur("20s", func(c *Config) *time.Duration { return &c.GRPC.KeepAliveTimeout })),
		k("max-concurrent-streams", "Maximum concurrent streams per client connection.",
			func(c *Config) keyValue { return intValue[uint32]{p: &c.GRPC.MaxConcurrentStreams} }),
		k("enable-grpc-gateway", "Serve the HTTP/JSON gateway under /v3/ on the client URLs.",
			boolean(func(c *Config) *bool { return &c.GRPC.EnableGateway })),
	)
	group("Authentication",
		k("auth-token", "Token type: 'simple', or 'jwt,sign-method=RS256,pub-key=PATH,priv-key=PATH[,ttl=5m]'.",
			str(func(c *Config) *string { return &c.Auth.Token })),
		k("auth-token-ttl", "Lifetime (in seconds) of an unused simple token.",
			func(c *Config) keyValue {
				return unitValue{&c.Auth.TokenTTL, time.Second, "seconds"}
			}),
		k("bcrypt-cost", "Cost of bcrypt password hashing, 4 to 31.",
			func(c *Config) keyValue { return intValue[int]{p: &c.Auth.BcryptCost} }),
	)
	group("TLS",
		k("tls-min-version", "Minimum TLS version: TLS1.2 or TLS1.3.",
			str(func(c *Config) *string { return &c.TLS.MinVersion })),
		k("tls-max-version", "Maximum TLS version: TLS1.2 or TLS1.3 (empty: Go's newest).",
			str(func(c *Config) *string { return &c.TLS.MaxVersion })),
		k("cipher-suites", "List of TLS 1.2 cipher suites, by Go's names (empty: Go's choice).",
			list(func(c *Config) *[]string { return &c.TLS.CipherSuites })),
		k("self-signed-cert-validity", "Validity (in years) of certificates generated by auto-tls.",
			func(c *Config) keyValue { return intValue[int]{p: &c.TLS.SelfSignedCertValidity, unit: "years"} }),
	)
	group("Logging and debugging",
		k("log-level", "Log level: debug, info, warn or error.",
			str(func(c *Config) *string { return &c.Log.Level })),
		k("log-format", "Log format: json or text.",
			str(func(c *Config) *string { return &c.Log.Format })),
		k("enable-pprof", "Serve Go's profiler under /debug/pprof/ on the client URLs.",
			boolean(func(c *Config) *bool { return &c.Metrics.EnablePprof })),
	)
	group("Client transport security", transportKeys(secClientTLS, "", "client", func(c *Config) *TransportSecurity { return &c.TLS.Client })...)
	group("Peer transport security", transportKeys(secPeerTLS, "peer-", "peer", func(c *Config) *TransportSecurity { return &c.TLS.Peer })...)
	return specs
}

// transportKeys are one TLS section's keys. The flags are etcd's: the client
// side's have no prefix (--cert-file), the peer side's have "peer-".
func transportKeys(section, flagPrefix, side string, ts func(c *Config) *TransportSecurity) []*keySpec {
	str := func(f func(t *TransportSecurity) *string) func(c *Config) keyValue {
		return func(c *Config) keyValue { return stringValue{f(ts(c))} }
	}
	boolean := func(f func(t *TransportSecurity) *bool) func(c *Config) keyValue {
		return func(c *Config) keyValue { return boolValue{f(ts(c))} }
	}
	k := func(sub, usage string, field func(c *Config) keyValue) *keySpec {
		return &keySpec{key: section + "." + sub, flag: flagPrefix + sub, usage: usage, field: field}
	}
	return []*keySpec{
		k("cert-file", "Path to the "+side+" server TLS certificate file.",
			str(func(t *TransportSecurity) *string { return &t.CertFile })),
		k("key-file", "Path to the "+side+" server TLS key file.",
			str(func(t *TransportSecurity) *string { return &t.KeyFile })),
		k("client-cert-auth", "Require "+side+" connections to present a certificate signed by trusted-ca-file.",
			boolean(func(t *TransportSecurity) *bool { return &t.ClientCertAuth })),
		k("trusted-ca-file", "Path to the CA bundle that "+side+" certificates are checked against.",
			str(func(t *TransportSecurity) *string { return &t.TrustedCAFile })),
		k("auto-tls", "Serve "+side+" TLS with a generated self-signed certificate.",
			boolean(func(t *TransportSecurity) *bool { return &t.AutoTLS })),
	}
}

// unsupportedKeys are etcd's options that Concord does not implement. Each is
// accepted only when empty or set to etcd's default (which is what Concord
// does anyway), so that an etcd configuration that merely spells out the
// defaults still loads, while one that asks for the feature fails loudly.
func unsupportedKeys() []*keySpec {
	newString := func() keyValue { return stringValue{new(string)} }
	newBool := func() keyValue { return boolValue{new(bool)} }
	newInt := func() keyValue { return intValue[int64]{p: new(int64)} }
	newList := func() keyValue { return listValue{new([]string)} }
	newDuration := func() keyValue { return durationValue{new(time.Duration), "5s"} }
	u := func(key, flag string, scratch func() keyValue, why string, accepted ...string) *keySpec {
		if flag == "" {
			flag = key
		}
		return &keySpec{key: key, flag: flag, newScratch: scratch, accepted: accepted, why: why,
			usage: "etcd option not supported by Concord: " + why}
	}
	const (
		notImpl     = "not implemented"
		noDiscovery = "discovery is not implemented; list the members in initial-cluster"
		noTracing   = "distributed tracing is not implemented"
		logStderr   = "Concord logs to standard error"
		bboltOwn    = "Concord's storage engine manages its own commits"
	)
	specs := []*keySpec{
		u("max-snapshots", "", newInt, "Concord's raft snapshot store keeps its own number of snapshot files", "5"),
		u("max-wals", "", newInt, "the raft log is trimmed by snapshot-count and snapshot-catchup-entries, not by file count", "5"),
		u("initial-election-tick-advance", "", newBool, "Concord's raft has no election ticks to advance", "true"),
		u("backend-batch-interval", "", newDuration, bboltOwn, "0s"),
		u("backend-batch-limit", "", newInt, bboltOwn, "0"),
		u("backend-bbolt-freelist-type", "", newString, "the bbolt freelist type is not configurable", "map"),
		u("listen-client-http-urls", "", newList, "HTTP is served with gRPC on listen-client-urls"),
		u("discovery-srv", "", newString, noDiscovery),
		u("discovery-srv-name", "", newString, noDiscovery),
		u("discovery-endpoints", "", newList, noDiscovery),
		u("discovery-token", "", newString, noDiscovery),
		u("discovery-fallback", "", newString, noDiscovery, "exit"),
		u("discovery", "", newString, noDiscovery),
		u("discovery-proxy", "", newString, noDiscovery),
		u("discovery-dial-timeout", "", newDuration, noDiscovery, "2s"),
		u("discovery-request-timeout", "", newDuration, noDiscovery, "5s"),
		u("discovery-keepalive-time", "", newDuration, noDiscovery, "2s"),
		u("discovery-keepalive-timeout", "", newDuration, noDiscovery, "6s"),
		u("discovery-insecure-transport", "", newBool, noDiscovery, "true"),
		u("discovery-insecure-skip-tls-verify", "", newBool, noDiscovery, "false"),
		u("discovery-cert", "", newString, noDiscovery),
		u("discovery-key", "", newString, noDiscovery),
		u("discovery-cacert", "", newString, noDiscovery),
		u("discovery-user", "", newString, noDiscovery),
		u("discovery-password", "", newString, noDiscovery),
		u("corrupt-check-time", "", newDuration, "periodic corruption checks are "+notImpl, "0s"),
		u("compact-hash-check-time", "", newDuration, "compaction hash checks are "+notImpl, "1m"),
		u("compaction-batch-limit", "", newInt, "compaction batching is not configurable", "1000", "0"),
		u("compaction-sleep-interval", "", newDuration, "compaction batching is not configurable", "0s"),
		u("warning-apply-duration", "", newDuration, "slow-apply warnings are not configurable", "100ms"),
		u("warning-unary-request-duration", "", newDuration, "slow-request warnings are not configurable", "300ms"),
		u("bootstrap-defrag-threshold-megabytes", "", newInt, "defragmentation at start is "+notImpl, "0"),
		u("force-new-cluster", "", newBool, "forcing a new cluster from existing data is "+notImpl, "false"),
		u("unsafe-no-fsync", "", newBool, "Concord always syncs its log", "false"),
		u("memory-mlock", "", newBool, "locking memory is "+notImpl, "false"),
		u("downgrade-check-time", "", newDuration, "downgrades are "+notImpl, "5s"),
		u("v2-deprecation", "", newString, "Concord has no v2 store", "write-only"),
		u("metrics", "", newString, "Concord exports one set of metrics", "basic"),
		u("enable-distributed-tracing", "", newBool, noTracing, "false"),
		u("distributed-tracing-address", "", newString, noTracing, "localhost:4317"),
		u("distributed-tracing-service-name", "", newString, noTracing, "etcd"),
		u("distributed-tracing-instance-id", "", newString, noTracing),
		u("distributed-tracing-sampling-rate", "", newInt, noTracing, "0"),
		u("logger", "", newString, "Concord logs with log/slog", "zap"),
		u("log-outputs", "", newList, logStderr, "default", "stderr"),
		u("enable-log-rotation", "", newBool, logStderr, "false"),
		u("log-rotation-config-json", "", newString, logStderr,
			`{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}`),
		u("cors", "", newList, "the HTTP gateway does not serve browsers", "*"),
		u("host-whitelist", "", newList, "the HTTP gateway does not check Host headers", "*"),
		u("feature-gates", "", newString, "Concord has no feature gates"),
		u("raft-read-timeout", "", newDuration, "Concord's raft transport has its own timeouts", "5s"),
		u("raft-write-timeout", "", newDuration, "Concord's raft transport has its own timeouts", "5s"),
		u("client-crl-file", "", newString, "certificate revocation lists are "+notImpl),
		u("peer-crl-file", "", newString, "certificate revocation lists are "+notImpl),
	}
	for _, side := range []struct{ section, prefix, cn, hostname, skipSAN string }{
		// etcd has no flags for the client side's allowed-cn and
		// skip-client-san-verification; these two names are Concord's.
		{secClientTLS, "", "client-cert-allowed-cn", "client-cert-allowed-hostname", "client-skip-client-san-verification"},
		{secPeerTLS, "peer-", "peer-cert-allowed-cn", "peer-cert-allowed-hostname", "peer-skip-client-san-verification"},
	} {
		specs = append(specs,
			u(side.section+".client-cert-file", side.prefix+"client-cert-file", newString, "a member presents its cert-file when it connects as a client"),
			u(side.section+".client-key-file", side.prefix+"client-key-file", newString, "a member presents its key-file when it connects as a client"),
			u(side.section+".allowed-cn", side.cn, newList, "certificate name checks are "+notImpl),
			u(side.section+".allowed-hostname", side.hostname, newList, "certificate name checks are "+notImpl),
			u(side.section+".skip-client-san-verification", side.skipSAN, newBool, notImpl, "false"),
		)
	}
	return specs
}

// applyKey sets spec's value in c through set (which parses text or a YAML
// node into the value it is given) and records where it came from. An
// unsupported key is parsed into a throw-away value and refused unless it is
// empty or etcd's default.
func (c *Config) applyKey(spec *keySpec, src origin, set func(v keyValue) error) *KeyError {
	if spec.unsupported() {
		v := spec.newScratch()
		if err := set(v); err != nil {
			return valueError(spec.key, src, err)
		}
		if spec.accepts(v) {
			return nil
		}
		msg := fmt.Sprintf("%s: etcd option not supported by Concord (%s); remove it", spec.key, spec.why)
		if len(spec.accepted) > 0 {
			msg += fmt.Sprintf(" or set it to etcd's default, %s", spec.accepted[0])
		}
		return &KeyError{Where: src.where, Key: spec.key, Msg: msg, Kind: ErrUnsupported, src: src}
	}
	if err := set(spec.field(c)); err != nil {
		return valueError(spec.key, src, err)
	}
	c.setOrigin(spec.key, src)
	return nil
}

// accepts reports whether v, the value given for an unsupported key, asks
// for nothing Concord does not do: it is empty or one of etcd's defaults.
func (s *keySpec) accepts(v keyValue) bool {
	got := v.String()
	if got == "" {
		return true
	}
	for _, a := range s.accepted {
		d := s.newScratch()
		if d.set(a) == nil && d.String() == got {
			return true
		}
	}
	return false
}

func valueError(key string, src origin, err error) *KeyError {
	return &KeyError{Where: src.where, Key: key, Msg: key + ": " + err.Error(), Kind: ErrBadValue, src: src}
}
