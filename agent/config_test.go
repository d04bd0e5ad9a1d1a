package agent

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/concordkv/concord/internal/testcluster"
)

// sampleValues holds, for every supported key, a valid value different from
// the default, as a user writes it. A new key must be added here, which
// makes TestEveryKeyIsSettable cover it.
func sampleValues() map[string]string {
	return map[string]string{
		"name":                           "node-7",
		"data-dir":                       "/srv/concord/data",
		"wal-dir":                        "/srv/concord/wal",
		"dev":                            "true",
		"listen-client-urls":             "http://10.0.0.7:2379,http://127.0.0.1:2379",
		"advertise-client-urls":          "http://10.0.0.7:2379",
		"listen-peer-urls":               "http://10.0.0.7:2380",
		"initial-advertise-peer-urls":    "http://10.0.0.7:2380",
		"listen-metrics-urls":            "http://127.0.0.1:2381",
		"socket-options.reuse-address":   "true",
		"socket-options.reuse-port":      "true",
		"initial-cluster":                "node-7=http://10.0.0.7:2380,node-8=http://10.0.0.8:2380",
		"initial-cluster-token":          "prod-1",
		"initial-cluster-state":          "existing",
		"strict-reconfig-check":          "false",
		"max-learners":                   "3",
		"heartbeat-interval":             "50",
		"election-timeout":               "500",
		"pre-vote":                       "false",
		"snapshot-count":                 "5000",
		"snapshot-catchup-entries":       "2000",
		"quota-backend-bytes":            "8589934592",
		"max-txn-ops":                    "256",
		"max-request-bytes":              "3145728",
		"auto-compaction-mode":           "revision",
		"auto-compaction-retention":      "1000",
		"watch-progress-notify-interval": "1m",
		"lease-revoke-rate":              "500",
		"grpc-keepalive-min-time":        "10s",
		"grpc-keepalive-interval":        "1h",
		"grpc-keepalive-timeout":         "30s",
		"max-concurrent-streams":         "100",
		"enable-grpc-gateway":            "false",
		"auth-token":                     "jwt,sign-method=RS256,pub-key=/keys/jwt.pub,priv-key=/keys/jwt",
		"auth-token-ttl":                 "600",
		"bcrypt-cost":                    "12",
		"tls-min-version":                "TLS1.3",
		"tls-max-version":                "TLS1.3",
		"cipher-suites":                  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
		"self-signed-cert-validity":      "2",
		"log-level":                      "debug",
		"log-format":                     "text",
		"enable-pprof":                   "true",

		"client-transport-security.cert-file":        "/tls/client.crt",
		"client-transport-security.key-file":         "/tls/client.key",
		"client-transport-security.client-cert-auth": "true",
		"client-transport-security.trusted-ca-file":  "/tls/ca.crt",
		"client-transport-security.auto-tls":         "true",
		"peer-transport-security.cert-file":          "/tls/peer.crt",
		"peer-transport-security.key-file":           "/tls/peer.key",
		"peer-transport-security.client-cert-auth":   "true",
		"peer-transport-security.trusted-ca-file":    "/tls/peer-ca.crt",
		"peer-transport-security.auto-tls":           "true",
	}
}

// yamlFor writes key: value, nesting a dotted key under its section.
func yamlFor(key, value string) string {
	if section, sub, ok := strings.Cut(key, "."); ok {
		return section + ":\n  " + sub + ": " + value + "\n"
	}
	return key + ": " + value + "\n"
}

func TestEveryKeyIsSettable(t *testing.T) {
	t.Chdir(t.TempDir())
	samples := sampleValues()
	idx := newKeyIndex()
	for _, spec := range idx.specs {
		if spec.unsupported() {
			continue
		}
		sample, ok := samples[spec.key]
		if !ok {
			t.Errorf("%s: no sample value in sampleValues; add one", spec.key)
			continue
		}
		def := DefaultConfig()
		if spec.field(&def).String() == sample {
			t.Errorf("%s: sample %q is the default; pick another", spec.key, sample)
		}
		t.Run(spec.key, func(t *testing.T) {
			// File.
			if err := os.WriteFile("config.yml", []byte("# a comment\n"+yamlFor(spec.key, sample)), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadFile("config.yml")
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if got := spec.field(&c).String(); got != sample {
				t.Errorf("file: got %q, want %q", got, sample)
			}
			wantLine := "config.yml:2"
			if strings.Contains(spec.key, ".") {
				wantLine = "config.yml:3" // the line of the nested key
			}
			if got := c.Origin(spec.key); got != wantLine {
				t.Errorf("file: origin %q, want %s", got, wantLine)
			}

			// Environment.
			c = DefaultConfig()
			if errs := c.applyEnv([]string{spec.envName() + "=" + sample}, idx); len(errs) > 0 {
				t.Fatalf("env: %v", joinKeyErrors(errs))
			}
			if got := spec.field(&c).String(); got != sample {
				t.Errorf("env %s: got %q, want %q", spec.envName(), got, sample)
			}
			if got, want := c.Origin(spec.key), "env "+spec.envName(); got != want {
				t.Errorf("env: origin %q, want %q", got, want)
			}

			// Flag.
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			scratch := DefaultConfig()
			BindFlags(fs, &scratch)
			if err := fs.Parse([]string{"--" + spec.flag + "=" + sample}); err != nil {
				t.Fatalf("flag: %v", err)
			}
			c = DefaultConfig()
			if errs := c.applyFlags(fs); len(errs) > 0 {
				t.Fatalf("flag: %v", joinKeyErrors(errs))
			}
			if got := spec.field(&c).String(); got != sample {
				t.Errorf("flag --%s: got %q, want %q", spec.flag, got, sample)
			}
			if got, want := c.Origin(spec.key), "flag --"+spec.flag; got != want {
				t.Errorf("flag: origin %q, want %q", got, want)
			}
		})
	}
	for key := range samples {
		if s, ok := idx.byKey[key]; !ok || s.unsupported() {
			t.Errorf("sampleValues has %q, which is not a supported key", key)
		}
	}
}

func TestDefaultConfigValidates(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	// Parse with nothing gives the same values as DefaultConfig.
	p, err := Parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range newKeyIndex().specs {
		if spec.unsupported() {
			continue
		}
		if got, want := spec.field(&p).String(), spec.field(&c).String(); got != want {
			t.Errorf("%s: Parse(nil) gives %q, DefaultConfig %q", spec.key, got, want)
		}
	}
}

// TestFlagsAndDefaultsMatchRealEtcd reads `etcd --help` of the real etcd
// v3.7.3 and checks that every etcd flag is one Concord knows (honoured, or
// refused with a reason), and that Concord's defaults are etcd's.
func TestFlagsAndDefaultsMatchRealEtcd(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), testcluster.Tool(t, "etcd", "ETCD"), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("etcd --help: %v\n%s", err, out)
	}
	flagLine := regexp.MustCompile(`^  --([a-z0-9-]+)(?: '?(.*?)'?)?$`)
	etcdDefaults := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			etcdDefaults[m[1]] = m[2]
		}
	}
	if len(etcdDefaults) < 100 {
		t.Fatalf("read only %d flags from etcd --help; has its format changed?\n%s", len(etcdDefaults), out)
	}
	// Where etcd's help shows a default in another form than its value.
	sameMeaning := map[string]string{
		"data-dir":               "${name}.etcd",   // ours: "<name>.etcd"
		"quota-backend-bytes":    "0",              // 0 means 2 GiB in etcd; ours says 2 GiB
		"max-concurrent-streams": "math.MaxUint32", // ours: 4294967295
	}
	idx := newKeyIndex()
	def := DefaultConfig()
	for flag, etcdDefault := range etcdDefaults {
		if flag == "config-file" {
			continue
		}
		spec, ok := idx.byFlag[flag]
		if !ok {
			t.Errorf("etcd flag --%s is unknown to Concord: support it or list it in unsupportedKeys", flag)
			continue
		}
		if etcdDefault == "" {
			continue // etcd's help shows no default for this one
		}
		if spec.unsupported() {
			v := spec.newScratch()
			if err := v.set(etcdDefault); err != nil || !spec.accepts(v) {
				t.Errorf("--%s: etcd's default %q is not accepted (err %v)", flag, etcdDefault, err)
			}
			continue
		}
		if sameMeaning[flag] == etcdDefault {
			continue
		}
		if got := spec.field(&def).String(); got != etcdDefault {
			t.Errorf("--%s: Concord's default %q, etcd's %q", flag, got, etcdDefault)
		}
	}
	for _, spec := range idx.specs {
		if _, ok := etcdDefaults[spec.flag]; !ok && !slices.Contains([]string{"dev", "lease-revoke-rate", "client-cert-allowed-cn", "client-skip-client-san-verification"}, spec.flag) {
			t.Errorf("--%s is not an etcd flag, nor one of Concord's own", spec.flag)
		}
	}
}

func TestDefaultsAreEtcds(t *testing.T) {
	// The values of etcd's embed.NewConfig, written out, for the keys that
	// etcd's --help does not show a default for.
	c := DefaultConfig()
	checks := []struct {
		name      string
		got, want any
	}{
		{"data-dir", c.DataDir, "default.etcd"},
		{"initial-cluster", c.Cluster.InitialCluster, "default=http://localhost:2380"},
		{"quota-backend-bytes", c.Store.QuotaBackendBytes, int64(2 << 30)},
		{"max-request-bytes", c.Store.MaxRequestBytes, 1572864},
		{"max-concurrent-streams", c.GRPC.MaxConcurrentStreams, uint32(4294967295)},
		{"snapshot-catchup-entries", c.Raft.SnapshotCatchUpEntries, uint64(5000)},
		{"enable-grpc-gateway", c.GRPC.EnableGateway, true},
		{"auth-token-ttl", c.Auth.TokenTTL, 300 * time.Second},
		{"heartbeat-interval", c.Raft.HeartbeatInterval, 100 * time.Millisecond},
		{"election-timeout", c.Raft.ElectionTimeout, time.Second},
		{"watch-progress-notify-interval", c.Store.WatchProgressNotifyInterval, 10 * time.Minute},
		{"lease-revoke-rate", c.Store.LeaseRevokeRate, 1000},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: default %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	t.Chdir(t.TempDir())
	file := `name: from-file
log-level: warn
max-txn-ops: 200
heartbeat-interval: 50
election-timeout: 500
`
	if err := os.WriteFile("config.yml", []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := []string{
		"HOME=/root",
		"CONCORD_NAME=from-env",
		"CONCORD_LOG_LEVEL=error",
		"CONCORD_MAX_TXN_OPS=", // empty: unset, as in etcd
	}
	c, err := Parse([]string{"--config-file", "config.yml", "--name", "from-flag"}, environ)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key, got, want, origin string
	}{
		{"name", c.Name, "from-flag", "flag --name"},
		{"log-level", c.Log.Level, "error", "env CONCORD_LOG_LEVEL"},
		{"max-txn-ops", itoa(c.Store.MaxTxnOps), "200", "config.yml:3"},
		{"heartbeat-interval", c.Raft.HeartbeatInterval.String(), "50ms", "config.yml:4"},
		{"snapshot-count", itoa(int(c.Raft.SnapshotCount)), "10000", ""},
		// Derived from the final name, not the file's.
		{"data-dir", c.DataDir, "from-flag.etcd", ""},
		{"initial-cluster", c.Cluster.InitialCluster, "from-flag=http://localhost:2380", ""},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.key, ch.got, ch.want)
		}
		if got := c.Origin(ch.key); got != ch.origin {
			t.Errorf("%s: origin %q, want %q", ch.key, got, ch.origin)
		}
	}
	if c.ConfigFile != "config.yml" {
		t.Errorf("ConfigFile = %q", c.ConfigFile)
	}

	// The file can come from CONCORD_CONFIG_FILE; --config-file wins over it.
	if err := os.WriteFile("other.yml", []byte("name: from-other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Parse(nil, []string{"CONCORD_CONFIG_FILE=other.yml"})
	if err != nil || c.Name != "from-other" {
		t.Errorf("CONCORD_CONFIG_FILE: name %q, err %v", c.Name, err)
	}
	c, err = Parse([]string{"--config-file=config.yml"}, []string{"CONCORD_CONFIG_FILE=other.yml"})
	if err != nil || c.Name != "from-file" {
		t.Errorf("--config-file over CONCORD_CONFIG_FILE: name %q, err %v", c.Name, err)
	}

	// A flag given twice: the last wins.
	c, err = Parse([]string{"--name", "a", "--name", "b"}, nil)
	if err != nil || c.Name != "b" {
		t.Errorf("repeated flag: name %q, err %v", c.Name, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDerivedValues(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		check    func(c Config) string
		wantDiff string
	}{
		{
			name: "advertise client URLs follow listen URLs that name an address",
			args: []string{"--listen-client-urls", "http://127.0.0.1:12379"},
			check: func(c Config) string {
				return strings.Join(c.Network.AdvertiseClientURLs, ",")
			},
			wantDiff: "http://127.0.0.1:12379",
		},
		{
			name: "advertise peer URLs and initial-cluster follow listen peer URLs",
			args: []string{"--name", "n1", "--listen-peer-urls", "http://127.0.0.1:12380"},
			check: func(c Config) string {
				return strings.Join(c.Network.InitialAdvertisePeerURLs, ",") + " " + c.Cluster.InitialCluster
			},
			wantDiff: "http://127.0.0.1:12380 n1=http://127.0.0.1:12380",
		},
		{
			name:     "explicit advertise URLs are kept",
			args:     []string{"--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://10.1.2.3:2379"},
			check:    func(c Config) string { return strings.Join(c.Network.AdvertiseClientURLs, ",") },
			wantDiff: "http://10.1.2.3:2379",
		},
		{
			name:     "quota 0 means etcd's default",
			args:     []string{"--quota-backend-bytes", "0"},
			check:    func(c Config) string { return itoa(int(c.Store.QuotaBackendBytes)) },
			wantDiff: "2147483648",
		},
		{
			name:     "explicit empty data-dir means the default",
			args:     []string{"--name", "x", "--data-dir", ""},
			check:    func(c Config) string { return c.DataDir },
			wantDiff: "x.etcd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(tt.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.check(c); got != tt.wantDiff {
				t.Errorf("got %q, want %q", got, tt.wantDiff)
			}
		})
	}
}

func TestDevMode(t *testing.T) {
	c, err := Parse([]string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(c.DataDir) })
	if !c.TempDataDir() {
		t.Error("TempDataDir() = false")
	}
	if fi, err := os.Stat(c.DataDir); err != nil || !fi.IsDir() {
		t.Fatalf("dev data dir %q: %v", c.DataDir, err)
	}
	if entries, _ := os.ReadDir(c.DataDir); len(entries) != 0 {
		t.Errorf("dev data dir is not fresh: %v", entries)
	}
	if !strings.HasPrefix(c.DataDir, os.TempDir()) {
		t.Errorf("dev data dir %q is not under %s", c.DataDir, os.TempDir())
	}
	want := map[string]string{
		"listen-client-urls":          "http://127.0.0.1:2379",
		"advertise-client-urls":       "http://127.0.0.1:2379",
		"listen-peer-urls":            "http://127.0.0.1:2380",
		"initial-advertise-peer-urls": "http://127.0.0.1:2380",
		"initial-cluster":             "default=http://127.0.0.1:2380",
		"initial-cluster-state":       "new",
	}
	for _, spec := range newKeyIndex().specs {
		if w, ok := want[spec.key]; ok {
			if got := spec.field(&c).String(); got != w {
				t.Errorf("dev %s = %q, want %q", spec.key, got, w)
			}
		}
	}

	// Two dev runs get two fresh directories.
	c2, err := Parse([]string{"--dev"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(c2.DataDir) })
	if c2.DataDir == c.DataDir {
		t.Errorf("two dev runs share %s", c.DataDir)
	}
}

func TestDevModeKeepsWhatTheUserSet(t *testing.T) {
	dir := t.TempDir()
	c, err := Parse([]string{"--dev", "--data-dir", dir, "--name", "solo",
		"--listen-client-urls", "http://127.0.0.1:0"}, []string{"CONCORD_LISTEN_PEER_URLS=http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != dir || c.TempDataDir() {
		t.Errorf("DataDir %q (temp %v), want %q", c.DataDir, c.TempDataDir(), dir)
	}
	if got := strings.Join(c.Network.AdvertiseClientURLs, ","); got != "http://127.0.0.1:0" {
		t.Errorf("advertise-client-urls = %q", got)
	}
	if got := c.Cluster.InitialCluster; got != "solo=http://127.0.0.1:0" {
		t.Errorf("initial-cluster = %q", got)
	}
}

func TestDevModeRefusedLeavesNoTempDir(t *testing.T) {
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "concord-dev-*"))
	c, err := Parse([]string{"--dev", "--initial-cluster", "default=http://127.0.0.1:2380,b=http://127.0.0.1:3380"}, nil)
	want := `flag --initial-cluster: initial-cluster: dev mode runs one node, but it lists 2 members`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if c.TempDataDir() {
		t.Error("TempDataDir() true after a refusal")
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "concord-dev-*"))
	for _, d := range after {
		if !slices.Contains(before, d) {
			t.Errorf("refused dev config left %s behind", d)
			os.RemoveAll(d)
		}
	}
}

func TestExampleSingleNode(t *testing.T) {
	c, err := LoadFile(filepath.Join("testdata", "config", "single-node.yml"))
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Name != "node-1" || c.DataDir != "./data/node-1.etcd" || c.Cluster.InitialCluster != "node-1=http://127.0.0.1:2380" ||
		c.Cluster.InitialClusterToken != "etcd-cluster-1" || c.Store.AutoCompactionRetention != "1h" {
		t.Errorf("values not loaded: %+v", c)
	}
	period, _, err := c.Store.CompactionRetention()
	if err != nil || period != time.Hour {
		t.Errorf("CompactionRetention = %v, %v", period, err)
	}
	// Also through Parse, with the file named by the environment.
	if _, err := Parse(nil, []string{"CONCORD_CONFIG_FILE=" + filepath.Join("testdata", "config", "single-node.yml")}); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

func TestExampleTutorial(t *testing.T) {
	t.Chdir(filepath.Join("testdata", "config"))
	const f = "tutorial-config.yml"
	c, err := LoadFile(f)
	wantLoad := f + `:37: unknown key "enable-authorization": neither etcd nor Concord has this option (etcd ignores it silently); ` +
		`authentication is switched on at runtime, after creating the root user: "etcdctl user add root" then "etcdctl auth enable"`
	if err == nil || err.Error() != wantLoad {
		t.Errorf("LoadFile error:\n%v\nwant:\n%s", err, wantLoad)
	}
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("LoadFile error is not ErrUnknownKey")
	}
	// Everything else in the file parsed, with its lines recorded.
	if c.Name != "node-1" || c.Origin("initial-cluster") != f+":25" || c.TLS.Peer.CertFile != "/etc/etcd/peer.crt" {
		t.Errorf("file not applied: name %q, initial-cluster origin %q, peer cert %q", c.Name, c.Origin("initial-cluster"), c.TLS.Peer.CertFile)
	}
	wantValidate := []string{
		f + `:13: listen-client-urls: "http://<NODE-IP>:2379": <NODE-IP> is a placeholder: replace it with the IP address to listen on (0.0.0.0 for every interface)`,
		f + `:16: advertise-client-urls: "http://<NODE-IP>:2379": <NODE-IP> is a placeholder: replace it with an address of this node that clients can reach`,
		f + `:19: listen-peer-urls: "http://<NODE-IP>:2380": <NODE-IP> is a placeholder: replace it with the IP address to listen on (0.0.0.0 for every interface)`,
		f + `:22: initial-advertise-peer-urls: "http://<NODE-IP>:2380": <NODE-IP> is a placeholder: replace it with an address of this node that the other members can reach`,
		f + `:25: initial-cluster: node-1="http://<NODE-IP>:2380": <NODE-IP> is a placeholder: replace it with that member's peer address`,
		f + `:25: initial-cluster: node-2="http://<NODE-IP>:2380": <NODE-IP> is a placeholder: replace it with that member's peer address`,
		f + `:34: auth-token: want "simple" or "jwt,sign-method=...,pub-key=...,priv-key=...", got "some-secret-token" (auth-token chooses the kind of token the server issues; it is not a shared secret)`,
		f + `:45: client-transport-security.cert-file: "/etc/etcd/server.crt": no such file or directory`,
		f + `:45: client-transport-security: TLS is configured but no listen-client-urls URL is https://, so it would not be used: change the URLs to https://`,
		f + `:46: client-transport-security.key-file: "/etc/etcd/server.key": no such file or directory`,
		f + `:48: client-transport-security.trusted-ca-file: "/etc/etcd/ca.crt": no such file or directory`,
		f + `:51: peer-transport-security.cert-file: "/etc/etcd/peer.crt": no such file or directory`,
		f + `:51: peer-transport-security: TLS is configured but no listen-peer-urls URL is https://, so it would not be used: change the URLs to https://`,
		f + `:52: peer-transport-security.key-file: "/etc/etcd/peer.key": no such file or directory`,
		f + `:54: peer-transport-security.trusted-ca-file: "/etc/etcd/ca.crt": no such file or directory`,
	}
	if _, err := os.Stat("/etc/etcd"); err == nil {
		t.Skip("/etc/etcd exists on this machine; the TLS file messages would differ")
	}
	verr := c.Validate()
	if verr == nil {
		t.Fatal("Validate passed the tutorial's placeholders")
	}
	if got := strings.Split(verr.Error(), "\n"); !slices.Equal(got, wantValidate) {
		t.Errorf("Validate:\n%s\nwant:\n%s", verr, strings.Join(wantValidate, "\n"))
	}

	// Parse reports both at once, in line order.
	_, perr := Parse([]string{"--config-file", f}, nil)
	want := slices.Clone(wantValidate)
	want = slices.Insert(want, 7, wantLoad)
	if perr == nil || perr.Error() != strings.Join(want, "\n") {
		t.Errorf("Parse:\n%v\nwant:\n%s", perr, strings.Join(want, "\n"))
	}
}

// TestExamplesMatchShared checks the copies in testdata against the files
// users bring, where those are present (on the development machine).
func TestExamplesMatchShared(t *testing.T) {
	for _, name := range []string{"single-node.yml", "tutorial-config.yml"} {
		shared, err := os.ReadFile(filepath.Join("/work/shared/examples", name))
		if err != nil {
			t.Skipf("no shared examples here: %v", err)
		}
		local, err := os.ReadFile(filepath.Join("testdata", "config", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(shared, local) {
			t.Errorf("testdata/config/%s differs from /work/shared/examples/%s: copy it again", name, name)
		}
	}
}

func TestInitialMembers(t *testing.T) {
	cl := ClusterConfig{InitialCluster: "a=http://10.0.0.1:2380, b=http://10.0.0.2:2380,a=https://10.0.0.1:2381"}
	got, err := cl.InitialMembers()
	if err != nil {
		t.Fatal(err)
	}
	want := []InitialMember{
		{Name: "a", PeerURLs: []string{"http://10.0.0.1:2380", "https://10.0.0.1:2381"}},
		{Name: "b", PeerURLs: []string{"http://10.0.0.2:2380"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(got[i].PeerURLs, want[i].PeerURLs) {
			t.Errorf("member %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	cl.InitialCluster = "a=http://10.0.0.1:2380,b"
	if _, err := cl.InitialMembers(); err == nil || err.Error() != `entry "b": want name=peerURL` {
		t.Errorf("err = %v", err)
	}
}

func TestCompactionRetention(t *testing.T) {
	tests := []struct {
		mode, retention string
		period          time.Duration
		revisions       int64
		err             string
	}{
		{CompactionPeriodic, "0", 0, 0, ""},
		{CompactionPeriodic, "1h", time.Hour, 0, ""},
		{CompactionPeriodic, "30m", 30 * time.Minute, 0, ""},
		{CompactionPeriodic, "5", 5 * time.Hour, 0, ""}, // etcd: a bare number is hours
		{CompactionPeriodic, "soon", 0, 0, `want a duration such as "1h" or "30m" (or a number of hours), got "soon"`},
		{CompactionRevision, "1000", 0, 1000, ""},
		{CompactionRevision, "1h", 0, 0, `want a non-negative number of revisions in revision mode, got "1h"`},
	}
	for _, tt := range tests {
		s := StoreConfig{AutoCompactionMode: tt.mode, AutoCompactionRetention: tt.retention}
		p, r, err := s.CompactionRetention()
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s %q: err %v, want %s", tt.mode, tt.retention, err, tt.err)
			}
			continue
		}
		if err != nil || p != tt.period || r != tt.revisions {
			t.Errorf("%s %q: %v %d %v, want %v %d", tt.mode, tt.retention, p, r, err, tt.period, tt.revisions)
		}
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	LogConfig{Level: "warn", Format: "text"}.NewLogger(&buf).Info("hidden")
	LogConfig{Level: "warn", Format: "text"}.NewLogger(&buf).Warn("shown", "k", "v")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "level=WARN msg=shown k=v") {
		t.Errorf("text logger wrote %q", got)
	}
	buf.Reset()
	LogConfig{Level: "debug", Format: "json"}.NewLogger(&buf).Debug("d")
	if got := buf.String(); !strings.Contains(got, `"level":"DEBUG","msg":"d"`) {
		t.Errorf("json logger wrote %q", got)
	}
}
