package agent

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The agent's configuration comes from four layers, each over the one before:
// DefaultConfig, the YAML file (--config-file or CONCORD_CONFIG_FILE),
// CONCORD_* environment variables, and explicit command-line flags. Every
// setting has the same name in all three user-facing forms: the YAML key
// (e.g. heartbeat-interval), the flag (--heartbeat-interval) and the
// environment variable (CONCORD_HEARTBEAT_INTERVAL). The names, meanings and
// defaults are etcd's, so an etcd configuration loads as it is; etcd options
// that Concord does not implement are refused with a message that says so,
// rather than silently ignored. docs/configuration.md lists every key.

// Defaults that are etcd's (embed.NewConfig in go.etcd.io/etcd/server/v3).
const (
	DefaultName                        = "default"
	DefaultListenClientURL             = "http://localhost:2379"
	DefaultListenPeerURL               = "http://localhost:2380"
	DefaultInitialClusterToken         = "etcd-cluster"
	DefaultHeartbeatInterval           = 100 * time.Millisecond
	DefaultElectionTimeout             = 1000 * time.Millisecond
	DefaultSnapshotCount               = 10000
	DefaultSnapshotCatchUpEntries      = 5000
	DefaultQuotaBackendBytes           = 2 << 30 // 2 GiB; etcd's "0 means the default"
	DefaultMaxTxnOps                   = 128
	DefaultMaxRequestBytes             = 1536 * 1024 // 1.5 MiB
	DefaultGRPCKeepAliveMinTime        = 5 * time.Second
	DefaultGRPCKeepAliveInterval       = 2 * time.Hour
	DefaultGRPCKeepAliveTimeout        = 20 * time.Second
	DefaultMaxConcurrentStreams        = 1<<32 - 1
	DefaultWatchProgressNotifyInterval = 10 * time.Minute
	DefaultAuthToken                   = "simple"
	DefaultAuthTokenTTL                = 300 * time.Second
	DefaultBcryptCost                  = 10
	DefaultMaxLearners                 = 1

	// DefaultLeaseRevokeRate is Concord's own: expired leases revoked per
	// second by the leader, so that a mass expiry cannot stall the cluster.
	DefaultLeaseRevokeRate = 1000

	// Dev mode's addresses: loopback only, etcd's ports.
	DevClientURL = "http://127.0.0.1:2379"
	DevPeerURL   = "http://127.0.0.1:2380"

	// EnvPrefix starts every environment variable the agent reads.
	EnvPrefix = "CONCORD_"
)

// Values of InitialClusterState.
const (
	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"
)

// Values of AutoCompactionMode.
const (
	CompactionPeriodic = "periodic"
	CompactionRevision = "revision"
)

// Sentinel errors: every error from LoadFile, Parse, FromFlags and Validate
// is (a join of) *KeyError values, each of which wraps exactly one of these,
// for callers that branch on the kind of problem (errors.Is works through the
// join).
var (
	// ErrSyntax: the file is not YAML Concord can read (syntax error, tab
	// indentation, duplicate key, more than one document).
	ErrSyntax = errors.New("config syntax error")
	// ErrUnknownKey: a key that neither etcd nor Concord defines.
	ErrUnknownKey = errors.New("unknown config key")
	// ErrUnsupported: an etcd option or a Concord section that this version
	// of Concord does not implement, set to something other than its default.
	ErrUnsupported = errors.New("config key not supported")
	// ErrBadValue: a value of the wrong type or out of its range.
	ErrBadValue = errors.New("bad config value")
	// ErrConflict: values that are fine alone but not together.
	ErrConflict = errors.New("conflicting config values")
)

// KeyError is one configuration problem. Its message names the key and, when
// the value came from a file, the file and line: `config.yml:7: unknown key
// "lisen-client-urls" (did you mean "listen-client-urls"?)`.
type KeyError struct {
	// Where the offending value came from: "config.yml:12", "env
	// CONCORD_NAME", "flag --name", or "" for a default or a value set in
	// Go.
	Where string
	// Key is the YAML key (for nested keys, "client-transport-security.cert-file"),
	// the variable's name for an unknown CONCORD_* variable, or "" for a
	// YAML syntax error.
	Key string
	// Msg says what is wrong, naming the key.
	Msg string
	// Kind is one of the sentinel errors above.
	Kind error

	src origin // for ordering errors: by source, then line
}

func (e *KeyError) Error() string {
	if e.Where == "" {
		return e.Msg
	}
	return e.Where + ": " + e.Msg
}

// Unwrap returns the sentinel, so errors.Is(err, ErrUnknownKey) works.
func (e *KeyError) Unwrap() error { return e.Kind }

// Config is everything `concord agent` can be told. Parse and FromFlags
// return it validated; one from DefaultConfig or LoadFile, or changed in Go,
// needs Validate. Set everything before starting the agent. Changing Name in Go does not re-derive
// DataDir and InitialCluster (Parse and LoadFile do): set them too.
type Config struct {
	// Name is this member's human-readable name, unique in the cluster
	// (key name). Default "default".
	Name string
	// DataDir holds the member's state: the bbolt database, raft snapshots
	// and, unless WALDir is set, the raft log (key data-dir). Default
	// "<name>.etcd".
	DataDir string
	// WALDir, if set, holds the raft log apart from DataDir, e.g. on a
	// faster disk (key wal-dir). Default "" (inside DataDir).
	WALDir string
	// Dev runs one throw-away node: data in a fresh temporary directory,
	// client and peer URLs on 127.0.0.1:2379 and 127.0.0.1:2380. It fills only
	// what the user did not set (key dev). Default false.
	Dev bool
	// ConfigFile is the YAML file the configuration was loaded from, if any
	// (flag --config-file, env CONCORD_CONFIG_FILE; not a key of the file).
	ConfigFile string

	Network NetworkConfig
	Cluster ClusterConfig
	Raft    RaftConfig
	Store   StoreConfig
	GRPC    GRPCConfig
	Auth    AuthConfig
	TLS     TLSConfig
	Log     LogConfig
	Metrics MetricsConfig

	// origins records where each key that was set came from (YAML key →
	// origin); nil for a Config built in Go. Read-only once Parse returns,
	// so copies of a Config may share it.
	origins map[string]origin
	// tempDataDir is true when DataDir was created by dev mode.
	tempDataDir bool
}

// NetworkConfig is where the member listens and what it tells others. URLs
// are strings as written (scheme://host:port); Validate checks them.
type NetworkConfig struct {
	// ListenClientURLs are the addresses served to clients: gRPC and the
	// HTTP/JSON gateway (key listen-client-urls). Default
	// ["http://localhost:2379"]. Hosts must be IP addresses or localhost.
	ListenClientURLs []string
	// AdvertiseClientURLs are the client URLs this member publishes to the
	// cluster and to clients (key advertise-client-urls). Default
	// ["http://localhost:2379"]; when only listen-client-urls is set, the
	// listen URLs (an error if they listen on 0.0.0.0).
	AdvertiseClientURLs []string
	// ListenPeerURLs are the addresses served to other members: raft and the
	// internal RPCs (key listen-peer-urls). Default ["http://localhost:2380"].
	ListenPeerURLs []string
	// InitialAdvertisePeerURLs are the peer URLs this member publishes (key
	// initial-advertise-peer-urls). Default ["http://localhost:2380"]; when
	// only listen-peer-urls is set, the listen URLs.
	InitialAdvertisePeerURLs []string
	// SocketReuseAddress sets SO_REUSEADDR on listeners (key
	// socket-options.reuse-address, flag --socket-reuse-address). Default
	// false.
	SocketReuseAddress bool
	// SocketReusePort sets SO_REUSEPORT on listeners (key
	// socket-options.reuse-port, flag --socket-reuse-port). Default false.
	SocketReusePort bool
}

// ClusterConfig is how the cluster is bootstrapped and reconfigured.
type ClusterConfig struct {
	// InitialCluster lists every member at bootstrap as
	// "name=peerURL,name=peerURL" (a name repeated for several URLs) (key
	// initial-cluster). Default "<name>=<initial-advertise-peer-urls>".
	// Ignored on a restart with existing data.
	InitialCluster string
	// InitialClusterToken makes the cluster's identity unique, so that two
	// clusters bootstrapped from the same URLs do not mix (key
	// initial-cluster-token). Default "etcd-cluster".
	InitialClusterToken string
	// InitialClusterState is "new" to bootstrap a cluster, "existing" to
	// join one this member was added to (key initial-cluster-state).
	// Default "new".
	InitialClusterState string
	// StrictReconfigCheck refuses membership changes that would lose quorum
	// (key strict-reconfig-check). Default true.
	StrictReconfigCheck bool
	// MaxLearners is how many learners (non-voting members) the cluster may
	// hold at once (key max-learners). Default 1.
	MaxLearners int
}

// RaftConfig is consensus timing and log retention. Heartbeat and election
// are integer milliseconds in the file, flags and environment, as in etcd.
type RaftConfig struct {
	// HeartbeatInterval is how often the leader tells followers it is alive
	// (key heartbeat-interval, milliseconds). Default 100ms.
	HeartbeatInterval time.Duration
	// ElectionTimeout is how long a follower waits without hearing from a
	// leader before it starts an election; at least 5× HeartbeatInterval and
	// at most 50s (key election-timeout, milliseconds). Default 1000ms.
	ElectionTimeout time.Duration
	// PreVote makes a candidate check that it could win before it disrupts
	// the cluster with a new term (key pre-vote). Default true.
	PreVote bool
	// SnapshotCount is the number of applied entries that triggers a raft
	// snapshot and log compaction (key snapshot-count). Default 10000.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries are kept after a snapshot
	// so that a slightly slow follower can catch up from the log instead of
	// a snapshot (key snapshot-catchup-entries). Default 5000.
	SnapshotCatchUpEntries uint64
}

// StoreConfig is the key-value store's limits and housekeeping.
type StoreConfig struct {
	// QuotaBackendBytes is the database size at which the member raises the
	// NOSPACE alarm and refuses writes until space is freed (key
	// quota-backend-bytes). Default 2 GiB; 0 in the file also means 2 GiB
	// (etcd's convention); a negative value disables the quota.
	QuotaBackendBytes int64
	// MaxTxnOps is the most operations one transaction may hold (key
	// max-txn-ops). Default 128.
	MaxTxnOps int
	// MaxRequestBytes is the largest client request accepted (key
	// max-request-bytes). Default 1.5 MiB.
	MaxRequestBytes int
	// AutoCompactionMode is how AutoCompactionRetention is read: "periodic"
	// (a duration) or "revision" (a number of revisions) (key
	// auto-compaction-mode). Default "periodic".
	AutoCompactionMode string
	// AutoCompactionRetention is how much history automatic compaction
	// keeps: "1h", "30m", or a bare number of hours in periodic mode; a
	// number of revisions in revision mode; "0" turns it off (key
	// auto-compaction-retention). Default "0". See CompactionRetention.
	AutoCompactionRetention string
	// WatchProgressNotifyInterval is how often idle watchers that asked for
	// progress notifications get one (key watch-progress-notify-interval).
	// Default 10m.
	WatchProgressNotifyInterval time.Duration
	// LeaseRevokeRate is the most expired leases the leader revokes per
	// second (key lease-revoke-rate; Concord's own). Default 1000.
	LeaseRevokeRate int
}

// GRPCConfig is the client-facing gRPC server's connection management.
type GRPCConfig struct {
	// KeepAliveMinTime is the shortest interval at which clients may ping;
	// faster pingers are cut off with too_many_pings (key
	// grpc-keepalive-min-time). Default 5s.
	KeepAliveMinTime time.Duration
	// KeepAliveInterval is how often the server pings an idle client; 0
	// turns server pings off (key grpc-keepalive-interval). Default 2h.
	KeepAliveInterval time.Duration
	// KeepAliveTimeout is how long a ping may go unanswered before the
	// connection is closed; 0 turns it off (key grpc-keepalive-timeout).
	// Default 20s.
	KeepAliveTimeout time.Duration
	// MaxConcurrentStreams bounds the streams one client connection may
	// open (key max-concurrent-streams). Default 2^32-1.
	MaxConcurrentStreams uint32
	// EnableGateway serves the HTTP/JSON gateway under /v3/ on the client
	// URLs (key enable-grpc-gateway). Default true.
	EnableGateway bool
}

// AuthConfig is authentication's token scheme. Authentication itself is
// switched on at runtime (`etcdctl auth enable`), not in the configuration.
type AuthConfig struct {
	// Token is the token type: "simple", or
	// "jwt,sign-method=RS256,pub-key=PATH,priv-key=PATH[,ttl=5m]" (key
	// auth-token). Default "simple".
	Token string
	// TokenTTL is how long a simple token lives without use (key
	// auth-token-ttl, integer seconds). Default 300s.
	TokenTTL time.Duration
	// BcryptCost is the cost of hashing user passwords, 4 to 31 (key
	// bcrypt-cost). Default 10.
	BcryptCost int
}

// TLSConfig is transport security for clients and peers.
type TLSConfig struct {
	// Client secures the client URLs (key client-transport-security).
	Client TransportSecurity
	// Peer secures the peer URLs (key peer-transport-security).
	Peer TransportSecurity
	// MinVersion is the oldest TLS version accepted, "TLS1.2" or "TLS1.3"
	// (key tls-min-version). Default "TLS1.2".
	MinVersion string
	// MaxVersion is the newest TLS version offered, "TLS1.2", "TLS1.3", or
	// "" for Go's newest (key tls-max-version). Default "".
	MaxVersion string
	// CipherSuites limits TLS 1.2 to these suites, by Go's names (key
	// cipher-suites). Default none: Go's choice.
	CipherSuites []string
	// SelfSignedCertValidity is how many years certificates made by auto-tls
	// are valid (key self-signed-cert-validity). Default 1.
	SelfSignedCertValidity int
}

// TransportSecurity is one side's TLS files, as in etcd's
// client-transport-security and peer-transport-security sections. The flags
// are etcd's: --cert-file for the client side, --peer-cert-file for the peer
// side, and so on.
type TransportSecurity struct {
	// CertFile is the server certificate, PEM (key cert-file). Default none.
	CertFile string
	// KeyFile is CertFile's private key, PEM (key key-file). Default none.
	KeyFile string
	// ClientCertAuth requires connecting clients (or peers) to present a
	// certificate signed by TrustedCAFile (key client-cert-auth). Default
	// false.
	ClientCertAuth bool
	// TrustedCAFile is the CA bundle that client (or peer) certificates are
	// checked against (key trusted-ca-file). Default none.
	TrustedCAFile string
	// AutoTLS makes the member generate a self-signed certificate in
	// DataDir instead of reading CertFile/KeyFile (key auto-tls). Default
	// false.
	AutoTLS bool
}

// Enabled reports whether this side serves TLS.
func (t TransportSecurity) Enabled() bool { return t.CertFile != "" || t.AutoTLS }

// LogConfig is the agent's logging.
type LogConfig struct {
	// Level is the least severe level logged: debug, info, warn or error;
	// etcd's dpanic, panic and fatal are accepted as error (key log-level).
	// Default "info".
	Level string
	// Format is "json" or "text"; etcd's "console" is accepted as "text"
	// (key log-format). Default "json".
	Format string
}

// MetricsConfig is observability endpoints.
type MetricsConfig struct {
	// ListenURLs are extra addresses serving only /metrics and the health
	// endpoints (key listen-metrics-urls). Default none: those are served
	// on the client URLs.
	ListenURLs []string
	// EnablePprof serves Go's profiler under /debug/pprof/ on the client
	// URLs (key enable-pprof). Default false.
	EnablePprof bool
}

// DefaultConfig returns etcd's defaults plus Concord's own. The derived
// defaults (DataDir, InitialCluster) follow the default Name.
func DefaultConfig() Config {
	return Config{
		Name:    DefaultName,
		DataDir: DefaultName + ".etcd",
		Network: NetworkConfig{
			ListenClientURLs:         []string{DefaultListenClientURL},
			AdvertiseClientURLs:      []string{DefaultListenClientURL},
			ListenPeerURLs:           []string{DefaultListenPeerURL},
			InitialAdvertisePeerURLs: []string{DefaultListenPeerURL},
		},
		Cluster: ClusterConfig{
			InitialCluster:      DefaultName + "=" + DefaultListenPeerURL,
			InitialClusterToken: DefaultInitialClusterToken,
			InitialClusterState: ClusterStateNew,
			StrictReconfigCheck: true,
			MaxLearners:         DefaultMaxLearners,
		},
		Raft: RaftConfig{
			HeartbeatInterval:      DefaultHeartbeatInterval,
			ElectionTimeout:        DefaultElectionTimeout,
			PreVote:                true,
			SnapshotCount:          DefaultSnapshotCount,
			SnapshotCatchUpEntries: DefaultSnapshotCatchUpEntries,
		},
		Store: StoreConfig{
			QuotaBackendBytes:           DefaultQuotaBackendBytes,
			MaxTxnOps:                   DefaultMaxTxnOps,
			MaxRequestBytes:             DefaultMaxRequestBytes,
			AutoCompactionMode:          CompactionPeriodic,
			AutoCompactionRetention:     "0",
			WatchProgressNotifyInterval: DefaultWatchProgressNotifyInterval,
			LeaseRevokeRate:             DefaultLeaseRevokeRate,
		},
		GRPC: GRPCConfig{
			KeepAliveMinTime:     DefaultGRPCKeepAliveMinTime,
			KeepAliveInterval:    DefaultGRPCKeepAliveInterval,
			KeepAliveTimeout:     DefaultGRPCKeepAliveTimeout,
			MaxConcurrentStreams: DefaultMaxConcurrentStreams,
			EnableGateway:        true,
		},
		Auth: AuthConfig{
			Token:      DefaultAuthToken,
			TokenTTL:   DefaultAuthTokenTTL,
			BcryptCost: DefaultBcryptCost,
		},
		TLS: TLSConfig{
			MinVersion:             "TLS1.2",
			SelfSignedCertValidity: 1,
		},
		Log: LogConfig{Level: "info", Format: "json"},
	}
}

// InitialMember is one member named in initial-cluster.
type InitialMember struct {
	Name     string
	PeerURLs []string
}

// InitialMembers parses InitialCluster into members, in the order their
// names first appear. It checks the form name=URL only; Validate checks the
// URLs and the relations with the other keys.
func (c *ClusterConfig) InitialMembers() ([]InitialMember, error) {
	var members []InitialMember
	index := map[string]int{}
	for entry := range strings.SplitSeq(c.InitialCluster, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, u, ok := strings.Cut(entry, "=")
		name, u = strings.TrimSpace(name), strings.TrimSpace(u)
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("entry %q: want name=peerURL", entry)
		}
		i, seen := index[name]
		if !seen {
			i = len(members)
			index[name] = i
			members = append(members, InitialMember{Name: name})
		}
		members[i].PeerURLs = append(members[i].PeerURLs, u)
	}
	return members, nil
}

// CompactionRetention reads AutoCompactionRetention for AutoCompactionMode:
// in periodic mode a duration ("1h", or a bare number of hours as etcd reads
// it), in revision mode a number of revisions. Zero means automatic
// compaction is off.
func (s *StoreConfig) CompactionRetention() (period time.Duration, revisions int64, err error) {
	r := strings.TrimSpace(s.AutoCompactionRetention)
	switch s.AutoCompactionMode {
	case CompactionPeriodic:
		if h, err := strconv.ParseInt(r, 10, 64); err == nil {
			if h < 0 || h > int64(1<<63-1)/int64(time.Hour) {
				return 0, 0, fmt.Errorf("want a non-negative number of hours, got %q", r)
			}
			return time.Duration(h) * time.Hour, 0, nil
		}
		d, err := time.ParseDuration(r)
		if err != nil || d < 0 {
			return 0, 0, fmt.Errorf(`want a duration such as "1h" or "30m" (or a number of hours), got %q`, r)
		}
		return d, 0, nil
	case CompactionRevision:
		n, err := strconv.ParseInt(r, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("want a non-negative number of revisions in revision mode, got %q", r)
		}
		return 0, n, nil
	default:
		return 0, 0, fmt.Errorf("auto-compaction-mode %q is neither %q nor %q", s.AutoCompactionMode, CompactionPeriodic, CompactionRevision)
	}
}

// TempDataDir reports whether DataDir is a temporary directory that dev mode
// created, which the agent should remove when it stops.
func (c *Config) TempDataDir() bool { return c.tempDataDir }

// Origin says where the value of key (a YAML key such as "name" or
// "client-transport-security.cert-file") came from: "config.yml:12", "env
// CONCORD_NAME", "flag --name", or "" if it was not set by the user.
func (c *Config) Origin(key string) string { return c.origins[key].where }

// NewLogger returns a logger writing to w at the configured level and
// format. Call it after Validate.
func (l LogConfig) NewLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(l.Level) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error", "dpanic", "panic", "fatal":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(l.Format, "text") || strings.EqualFold(l.Format, "console") {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// origin is where one key's value came from.
type origin struct {
	where string // as shown in errors
	rank  int    // sources in layering order, for sorting errors
	line  int    // line in the file, for sorting errors
}

const (
	rankDefault = iota
	rankFile
	rankEnv
	rankFlag
)

// setOrigin records that key was set by src.
func (c *Config) setOrigin(key string, src origin) {
	if c.origins == nil {
		c.origins = map[string]origin{}
	}
	c.origins[key] = src
}

// isSet reports whether the user set key (file, env or flag).
func (c *Config) isSet(key string) bool {
	_, ok := c.origins[key]
	return ok
}

// joinKeyErrors orders errs as a reader fixes them, file lines first, then
// the environment, then flags, then the rest, and joins them (nil if none).
func joinKeyErrors(errs []*KeyError) error {
	if len(errs) == 0 {
		return nil
	}
	rank := func(e *KeyError) int {
		if e.src.rank == rankDefault {
			return rankFlag + 1
		}
		return e.src.rank
	}
	slices.SortStableFunc(errs, func(a, b *KeyError) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.src.line, b.src.line))
	})
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
